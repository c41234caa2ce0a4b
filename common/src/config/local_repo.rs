//! A local folder laid out like a Spring Cloud Config native repository, so that a laptop needs
//! no config server.

use std::path::{Path, PathBuf};

use super::ConfigError;
use super::properties::{PropertySource, flatten};

/// A folder of `application.yml`, `application-{profile}.yml`, `{app}.yml` and
/// `{app}-{profile}.yml` files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRepo {
    dir: PathBuf,
}

impl LocalRepo {
    /// The repository in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files that may configure `application` with `profile` (a comma-separated list, the
    /// last one winning), highest precedence first, as Spring Boot orders them: profile
    /// files above plain ones, and the application's own file above the shared `application`.
    pub fn candidates(&self, application: &str, profile: &str) -> Vec<PathBuf> {
        let mut names = vec!["application.yml".to_owned(), format!("{application}.yml")];
        for profile in profile.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            names.push(format!("application-{profile}.yml"));
            names.push(format!("{application}-{profile}.yml"));
        }
        names.iter().rev().map(|name| self.dir.join(name)).collect()
    }

    /// Reads the candidate files that exist, highest precedence first; at least one must.
    pub fn load(
        &self,
        application: &str,
        profile: &str,
    ) -> Result<Vec<PropertySource>, ConfigError> {
        let candidates = self.candidates(application, profile);
        let sources = candidates
            .iter()
            .filter(|path| path.is_file())
            .map(|path| read_yaml(path))
            .collect::<Result<Vec<_>, _>>()?;
        if sources.is_empty() {
            return Err(ConfigError::NoLocalFiles {
                application: application.to_owned(),
                profile: profile.to_owned(),
                dir: self.dir.clone(),
                looked_for: candidates
                    .iter()
                    .filter_map(|path| path.file_name())
                    .map(|name| name.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(sources)
    }
}

fn read_yaml(path: &Path) -> Result<PropertySource, ConfigError> {
    let unreadable = |reason: String| ConfigError::LocalFile {
        path: path.to_owned(),
        reason,
    };
    let file = ::config::File::from(path).format(::config::FileFormat::Yaml);
    let table = ::config::Source::collect(&file).map_err(|error| match error {
        ::config::ConfigError::FileParse { cause, .. } => unreadable(cause.to_string()),
        other => unreadable(other.to_string()),
    })?;
    let tree: serde_json::Value = ::config::Value::new(None, ::config::ValueKind::Table(table))
        .try_deserialize()
        .map_err(|error| unreadable(error.to_string()))?;
    Ok(PropertySource {
        name: format!("file:{}", path.display()),
        properties: flatten(&tree),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_profile_files_above_plain_ones_and_the_last_profile_first() {
        let names: Vec<_> = LocalRepo::new("repo")
            .candidates("vipservice", "dev, local")
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "repo/vipservice-local.yml",
                "repo/application-local.yml",
                "repo/vipservice-dev.yml",
                "repo/application-dev.yml",
                "repo/vipservice.yml",
                "repo/application.yml",
            ]
        );
    }
}
