//! Layered loading: `default.toml` < `{RUCHE_ENV}.toml` < `RUCHE_*` variables, then validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::error::ConfigError;
use super::sections::Settings;
use super::validate::validate;

/// Names the configuration directory.
pub const CONFIG_DIR_VAR: &str = "RUCHE_CONFIG_DIR";
/// Selects the environment overlay file.
pub const ENV_VAR: &str = "RUCHE_ENV";
/// Prefix of override variables.
pub const ENV_PREFIX: &str = "RUCHE_";
/// Nesting delimiter in override variable names.
pub const NESTING: &str = "__";
/// Environment used when `RUCHE_ENV` is unset.
pub const DEFAULT_ENV: &str = "development";
/// How many parents of the working directory are searched for `config/`.
const PARENT_SEARCH_DEPTH: usize = 4;

/// Loaded settings and where they came from (to be logged once logging is up).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated settings.
    pub settings: Settings,
    /// Directory the files were read from.
    pub config_dir: PathBuf,
    /// The selected environment (`RUCHE_ENV`).
    pub env_name: String,
    /// Files actually read, in merge order.
    pub files: Vec<PathBuf>,
    /// Names of the `RUCHE_*` override variables applied (names only, never values).
    pub overrides: Vec<String>,
}

/// Environment variables, looked up case-insensitively like the original's settings loader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    /// Takes an explicit set of variables (tests pass their own, so they never touch the process environment).
    pub fn new<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(
            vars.into_iter()
                .map(|(k, v)| (k.into().to_ascii_uppercase(), v.into()))
                .collect(),
        )
    }

    /// The process environment (non-UTF-8 variables are skipped; none of ours can be).
    pub fn from_process() -> Self {
        Self::new(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// A variable's value, if set and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(&name.to_ascii_uppercase())
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

/// Loads from the process environment, the working directory and the executable's location.
pub fn load() -> Result<Loaded, ConfigError> {
    let vars = EnvVars::from_process();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let exe = std::env::current_exe().ok();
    let dir = locate_config_dir(&vars, &cwd, exe.as_deref())?;
    load_from(&dir, &vars)
}

/// Finds the configuration directory. First match wins:
/// 1. `RUCHE_CONFIG_DIR`, which must be an existing directory;
/// 2. `config/` holding a `default.toml` in the working directory or up to 4 of its parents (the original's rule);
/// 3. `config/` next to the executable, then `../etc/ruche-worker/` relative to it (installed binaries);
/// 4. this crate's own `config/` when it still exists (`cargo run` from anywhere in the workspace);
/// 5. otherwise `config/` under the working directory, so the error names a concrete path.
pub fn locate_config_dir(
    vars: &EnvVars,
    cwd: &Path,
    exe: Option<&Path>,
) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = vars.get(CONFIG_DIR_VAR) {
        let dir = cwd.join(dir);
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(ConfigError::MissingConfigDir(dir))
        };
    }
    let has_defaults = |dir: &Path| dir.join("default.toml").is_file();
    let from_cwd = cwd
        .ancestors()
        .take(PARENT_SEARCH_DEPTH + 1)
        .map(|dir| dir.join("config"));
    let exe_dir = exe.and_then(Path::parent);
    let from_exe = exe_dir
        .into_iter()
        .flat_map(|dir| [dir.join("config"), dir.join("../etc/ruche-worker")]);
    let from_crate = std::iter::once(Path::new(env!("CARGO_MANIFEST_DIR")).join("config"));
    Ok(from_cwd
        .chain(from_exe)
        .chain(from_crate)
        .find(|dir| has_defaults(dir))
        .unwrap_or_else(|| cwd.join("config")))
}

/// Loads `dir/default.toml` (required), `dir/{RUCHE_ENV}.toml` (optional; `development` when unset), then the
/// `RUCHE_*` overrides in `vars`, and validates the result.
pub fn load_from(dir: &Path, vars: &EnvVars) -> Result<Loaded, ConfigError> {
    let env_name = vars.get(ENV_VAR).unwrap_or(DEFAULT_ENV).trim().to_owned();
    if !env_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::InvalidEnvName(env_name));
    }
    let default_file = dir.join("default.toml");
    if !default_file.is_file() {
        return Err(ConfigError::MissingDefaultFile(default_file));
    }
    let mut files = vec![default_file];
    let env_file = dir.join(format!("{env_name}.toml"));
    if env_file.is_file() {
        files.push(env_file);
    }
    let overrides = EnvOverrides::from_vars(vars)?;
    let applied = overrides.names.clone();

    let figment = files
        .iter()
        .fold(Figment::new(), |figment, file| {
            figment.merge(Toml::file(file))
        })
        .merge(overrides);
    // Lossy extraction gives environment strings the original's lax meaning: "yes"/"on"/"1" are true, "10" is 10.
    let settings: Settings = figment.extract_lossy().map_err(ConfigError::from_figment)?;
    validate(&settings)?;
    Ok(Loaded {
        settings,
        config_dir: dir.to_path_buf(),
        env_name,
        files,
        overrides: applied,
    })
}

/// `RUCHE_A__B__C=value` as `{a: {b: {c: value}}}`. A value starting with `{` or `[` is JSON (a whole section at
/// once); anything else stays a string and is converted to the target type on extraction.
struct EnvOverrides {
    dict: Dict,
    names: Vec<String>,
}

impl EnvOverrides {
    fn from_vars(vars: &EnvVars) -> Result<Self, ConfigError> {
        let mut dict = Dict::new();
        let mut names = Vec::new();
        // Sorted names put `RUCHE_JOBS` before `RUCHE_JOBS__HATCHET__X`, so a leaf variable beats a JSON section.
        for (name, raw) in &vars.0 {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name == CONFIG_DIR_VAR || name == ENV_VAR {
                continue;
            }
            let keys: Vec<String> = path.split(NESTING).map(str::to_ascii_lowercase).collect();
            if keys.iter().any(String::is_empty) {
                return Err(ConfigError::Parse(format!(
                    "`{name}`: empty key segment; use `__` between keys only"
                )));
            }
            let value = parse_value(name, raw)?;
            insert(&mut dict, &keys, value);
            names.push(name.clone());
        }
        Ok(Self { dict, names })
    }
}

fn parse_value(name: &str, raw: &str) -> Result<Value, ConfigError> {
    let trimmed = raw.trim();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str::<Value>(trimmed)
            .map_err(|err| ConfigError::Parse(format!("`{name}`: not valid JSON ({err})")))
    } else {
        Ok(Value::from(trimmed.to_owned()))
    }
}

/// Inserts `value` at `keys`, deep-merging into existing tables so siblings survive.
fn insert(dict: &mut Dict, keys: &[String], value: Value) {
    let Some((first, rest)) = keys.split_first() else {
        return;
    };
    if rest.is_empty() {
        match (dict.get_mut(first), value) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, incoming)) => {
                for (key, inner) in incoming {
                    insert(existing, std::slice::from_ref(&key), inner);
                }
            }
            (_, value) => {
                dict.insert(first.clone(), value);
            }
        }
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named("RUCHE_* environment variables")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}
