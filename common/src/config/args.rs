//! The command-line flags that choose the config source, with their environment equivalents,
//! and the Go original's flag spellings so its Dockerfile entrypoints work unchanged.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::secret::SecretUrl;

/// Where to load settings from. Flatten it into a service's `clap::Parser`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ConfigArgs {
    /// Spring Cloud Config server to load settings from, e.g. http://configserver:8888;
    /// without it, settings come from the --config-repo folder.
    #[arg(long, env = "GOBLOG_CONFIG_SERVER_URL")]
    pub config_server_url: Option<SecretUrl>,

    /// Profile to load (Spring's active profiles; comma-separated, the last one wins).
    #[arg(long, env = "GOBLOG_PROFILE", default_value = "local")]
    pub profile: String,

    /// Label (git branch) the config server serves settings from.
    #[arg(long, env = "GOBLOG_CONFIG_BRANCH", default_value = "master")]
    pub config_branch: String,

    /// Local folder in Spring's native layout, used when no config server URL is given.
    #[arg(long, env = "GOBLOG_CONFIG_REPO", default_value = "config-repo")]
    pub config_repo: PathBuf,
}

impl ConfigArgs {
    /// Names of the environment variables these flags read, which are therefore no settings.
    pub const ENV_VARS: [&'static str; 4] = [
        "GOBLOG_CONFIG_SERVER_URL",
        "GOBLOG_PROFILE",
        "GOBLOG_CONFIG_BRANCH",
        "GOBLOG_CONFIG_REPO",
    ];
}

/// The Go original's flag names and ours.
const GO_FLAGS: [(&str, &str); 3] = [
    ("configServerUrl", "--config-server-url"),
    ("profile", "--profile"),
    ("configBranch", "--config-branch"),
];

/// Rewrites the Go forms `-configServerUrl=…`, `-profile …`, `--configBranch=…` into ours,
/// leaving every other argument (and everything after `--`) alone. Call it on `argv` before
/// clap parses it.
pub fn normalize_go_flags(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut past_terminator = false;
    args.into_iter()
        .map(|arg| {
            if past_terminator {
                return arg;
            }
            past_terminator = arg == "--";
            arg.to_str().and_then(translate).map_or(arg, OsString::from)
        })
        .collect()
}

fn translate(arg: &str) -> Option<String> {
    let flag = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (flag, None),
    };
    let (_, ours) = GO_FLAGS.iter().find(|(go, _)| *go == name)?;
    Some(match value {
        Some(value) => format!("{ours}={value}"),
        None => (*ours).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: ConfigArgs,
    }

    fn parse(args: &[&str]) -> ConfigArgs {
        let argv = std::iter::once("service").chain(args.iter().copied());
        Cli::try_parse_from(normalize_go_flags(argv.map(OsString::from)))
            .expect("parses")
            .config
    }

    #[test]
    fn accepts_the_go_original_entrypoint() {
        let args = parse(&[
            "-configServerUrl=http://configserver:8888",
            "-profile=test",
            "-configBranch=P8",
        ]);
        assert_eq!(
            args.config_server_url.as_ref().map(SecretUrl::expose),
            Some("http://configserver:8888")
        );
        assert_eq!(args.profile, "test");
        assert_eq!(args.config_branch, "P8");
    }

    #[test]
    fn accepts_our_flags_and_go_flags_with_separate_values() {
        let args = parse(&[
            "--profile",
            "dev",
            "-configBranch",
            "x",
            "--config-repo",
            "/r",
        ]);
        assert_eq!(args.profile, "dev");
        assert_eq!(args.config_branch, "x");
        assert_eq!(args.config_repo, PathBuf::from("/r"));
        assert_eq!(args.config_server_url, None);
    }

    #[test]
    fn leaves_other_arguments_alone() {
        let argv = ["svc", "-v", "--port=1", "--", "-profile=x"].map(OsString::from);
        assert_eq!(normalize_go_flags(argv.clone()), argv.to_vec());
    }
}
