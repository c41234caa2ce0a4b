//! A local folder laid out like a Spring Cloud Config native repository, so that a laptop needs
//! no config server.

use std::collections::BTreeSet;
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
        for profile in profiles(profile) {
            names.extend(profile_files(application, profile));
        }
        names.iter().rev().map(|name| self.dir.join(name)).collect()
    }

    /// Reads the candidate files that exist, highest precedence first. The folder must exist,
    /// each profile must have a file of its own, and at least one file must be there.
    pub fn load(
        &self,
        application: &str,
        profile: &str,
    ) -> Result<Vec<PropertySource>, ConfigError> {
        let files = self.files()?;
        if let Some(missing) = profiles(profile).find(|profile| {
            !profile_files(application, profile)
                .iter()
                .any(|name| files.contains(name))
        }) {
            return Err(ConfigError::UnknownProfile {
                profile: missing.to_owned(),
                application: application.to_owned(),
                dir: self.dir.clone(),
                available: available_profiles(application, &files),
            });
        }
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

    /// The names of the files in the folder (symbolic links to files included, as Docker and
    /// Kubernetes mount configs).
    fn files(&self) -> Result<BTreeSet<String>, ConfigError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => ConfigError::NoLocalRepo {
                dir: self.dir.clone(),
                cwd: std::env::current_dir().unwrap_or_default(),
            },
            _ => ConfigError::LocalFile {
                path: self.dir.clone(),
                reason: error.to_string(),
            },
        })?;
        Ok(entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().is_file())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect())
    }
}

/// The profiles of a comma-separated list, in order.
pub(crate) fn profiles(profile: &str) -> impl Iterator<Item = &str> {
    profile.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// The files of one profile, lower precedence first.
fn profile_files(application: &str, profile: &str) -> [String; 2] {
    [
        format!("application-{profile}.yml"),
        format!("{application}-{profile}.yml"),
    ]
}

/// The profiles that some file of the folder configures for `application`.
fn available_profiles(application: &str, files: &BTreeSet<String>) -> Vec<String> {
    let prefixes = ["application-".to_owned(), format!("{application}-")];
    let profiles: BTreeSet<&str> = files
        .iter()
        .filter_map(|name| name.strip_suffix(".yml"))
        .flat_map(|stem| {
            prefixes
                .iter()
                .filter_map(move |p| stem.strip_prefix(p.as_str()))
        })
        .filter(|profile| !profile.is_empty())
        .collect();
    profiles.into_iter().map(str::to_owned).collect()
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
    fn lists_the_profiles_of_the_service_and_of_every_service() {
        let files: BTreeSet<String> = [
            "application.yml",
            "application-local.yml",
            "svc-dev.yml",
            "svc-test.yml",
            "svc.yml",
            "svc-dev.yaml",
            "other-prod.yml",
            "svc-.yml",
        ]
        .map(String::from)
        .into();
        assert_eq!(available_profiles("svc", &files), ["dev", "local", "test"]);
    }

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
