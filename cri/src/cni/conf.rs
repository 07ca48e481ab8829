//! Network configuration: finding it in the conf dir the way containerd and libcni do (files
//! ending `.conf`, `.conflist` or `.json`, lexically first wins; a single plugin's `.conf` becomes
//! a list of one), checking it, and building each plugin's stdin from it.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::CniError;

/// The largest configuration file read (containerd's default limit too).
const MAX_CONF_BYTES: u64 = 1 << 20;

/// The spec versions whose configurations are accepted.
pub const SUPPORTED_VERSIONS: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// One plugin of a list: its type (the binary's name) and its whole configuration object.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConf {
    pub plugin_type: String,
    pub raw: Map<String, Value>,
}

/// A network configuration list: the network's name and version, and its plugins in ADD order.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    pub disable_check: bool,
    pub plugins: Vec<PluginConf>,
    /// The file it was loaded from; `None` for one read back from the result cache.
    pub source: Option<PathBuf>,
}

impl NetworkList {
    /// Finds and loads the network of `dir`: the lexically first file ending `.conf`,
    /// `.conflist` or `.json`. A missing or empty directory is [`CniError::NoConfig`].
    pub fn load_dir(dir: &Path) -> Result<Self, CniError> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CniError::NoConfig {
                    dir: dir.to_owned(),
                })
            }
            Err(source) => {
                return Err(CniError::ReadConfDir {
                    dir: dir.to_owned(),
                    source,
                })
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| CniError::ReadConfDir {
                dir: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            let wanted = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("conf" | "conflist" | "json")
            );
            // `is_file` follows links, as a conf dir often holds links into a package's files.
            if wanted && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let first = files.into_iter().next().ok_or_else(|| CniError::NoConfig {
            dir: dir.to_owned(),
        })?;
        Self::load_file(&first)
    }

    /// Loads one file: a list if it ends `.conflist`, otherwise a single plugin's configuration.
    pub fn load_file(path: &Path) -> Result<Self, CniError> {
        let read_err = |source| CniError::ReadConfig {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::new();
        fs::File::open(path)
            .map_err(read_err)?
            .take(MAX_CONF_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_CONF_BYTES {
            return Err(invalid(path, format!("larger than {MAX_CONF_BYTES} bytes")));
        }
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|source| CniError::ParseConfig {
                path: path.to_owned(),
                source,
            })?;
        let list = if path.extension().is_some_and(|e| e == "conflist") {
            Self::from_list(value, path)
        } else {
            Self::from_single(value, path)
        }?;
        Ok(Self {
            source: Some(path.to_owned()),
            ..list
        })
    }

    /// A list from its JSON form (`{"cniVersion", "name", "plugins": [...]}`); `origin` names it
    /// in errors.
    pub fn from_list(value: Value, origin: &Path) -> Result<Self, CniError> {
        let Value::Object(mut obj) = value else {
            return Err(invalid(origin, "not a JSON object".into()));
        };
        let (name, cni_version) = name_and_version(&obj, origin)?;
        let disable_check = match obj.get("disableCheck") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(_) => return Err(invalid(origin, "disableCheck is not a boolean".into())),
        };
        let Some(Value::Array(plugins)) = obj.remove("plugins") else {
            return Err(invalid(origin, "no plugins array".into()));
        };
        if plugins.is_empty() {
            return Err(invalid(origin, "the plugins array is empty".into()));
        }
        let plugins = plugins
            .into_iter()
            .map(|p| match p {
                Value::Object(raw) => plugin(raw, origin),
                _ => Err(invalid(origin, "a plugin is not a JSON object".into())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name,
            cni_version,
            disable_check,
            plugins,
            source: None,
        })
    }

    /// A list of one from a single plugin's configuration (`{"cniVersion", "name", "type", ...}`).
    pub fn from_single(value: Value, origin: &Path) -> Result<Self, CniError> {
        let Value::Object(obj) = value else {
            return Err(invalid(origin, "not a JSON object".into()));
        };
        if obj.contains_key("plugins") && !obj.contains_key("type") {
            return Err(invalid(
                origin,
                "a configuration list in a file not named .conflist".into(),
            ));
        }
        let (name, cni_version) = name_and_version(&obj, origin)?;
        Ok(Self {
            name,
            cni_version,
            disable_check: false,
            plugins: vec![plugin(obj, origin)?],
            source: None,
        })
    }

    /// The list's JSON form, as [`NetworkList::from_list`] reads it back (for the result cache).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "cniVersion": self.cni_version,
            "name": self.name,
            "disableCheck": self.disable_check,
            "plugins": self.plugins.iter().map(|p| Value::Object(p.raw.clone())).collect::<Vec<_>>(),
        })
    }

    /// Whether the list's version is at least `min` (a spec version such as "0.4.0").
    pub fn version_at_least(&self, min: &str) -> bool {
        version_key(&self.cni_version) >= version_key(min)
    }

    /// The stdin of `plugin`: its configuration with the list's `name` and `cniVersion`, the
    /// previous result as `prevResult`, and those of `capability_args` that the plugin declares
    /// in its `capabilities` as `runtimeConfig`.
    pub fn plugin_stdin(
        &self,
        plugin: &PluginConf,
        prev_result: Option<&Value>,
        capability_args: &Map<String, Value>,
    ) -> Vec<u8> {
        let mut obj = plugin.raw.clone();
        obj.insert("name".into(), Value::String(self.name.clone()));
        obj.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        if let Some(prev) = prev_result {
            obj.insert("prevResult".into(), prev.clone());
        }
        let runtime_config: Map<String, Value> = match obj.get("capabilities") {
            Some(Value::Object(caps)) => capability_args
                .iter()
                .filter(|(k, _)| caps.get(*k) == Some(&Value::Bool(true)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => Map::new(),
        };
        if !runtime_config.is_empty() {
            obj.insert("runtimeConfig".into(), Value::Object(runtime_config));
        }
        // Serializing a Value cannot fail (its map keys are strings).
        serde_json::to_vec(&Value::Object(obj)).unwrap_or_default()
    }
}

fn invalid(path: &Path, reason: String) -> CniError {
    CniError::InvalidConfig {
        path: path.to_owned(),
        reason,
    }
}

fn name_and_version(obj: &Map<String, Value>, origin: &Path) -> Result<(String, String), CniError> {
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid(origin, "no network name".into())),
    };
    let version = match obj.get("cniVersion") {
        Some(Value::String(s)) => s.clone(),
        None => return Err(invalid(origin, "no cniVersion".into())),
        Some(_) => return Err(invalid(origin, "cniVersion is not a string".into())),
    };
    if !SUPPORTED_VERSIONS.contains(&version.as_str()) {
        return Err(CniError::UnsupportedVersion {
            path: origin.to_owned(),
            version,
        });
    }
    Ok((name, version))
}

fn plugin(raw: Map<String, Value>, origin: &Path) -> Result<PluginConf, CniError> {
    let plugin_type = match raw.get("type") {
        Some(Value::String(t))
            if !t.is_empty() && !t.contains('/') && t != "." && t != ".." && !t.contains('\0') =>
        {
            t.clone()
        }
        Some(Value::String(t)) => {
            return Err(invalid(
                origin,
                format!("plugin type {t:?} is not a file name"),
            ))
        }
        _ => return Err(invalid(origin, "a plugin has no type".into())),
    };
    Ok(PluginConf { plugin_type, raw })
}

/// A version as a comparable triple; unparsable parts count as 0.
fn version_key(v: &str) -> (u32, u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).unwrap();
    }

    const LIST: &str = r#"{"cniVersion":"1.0.0","name":"listnet","plugins":[
        {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}},
        {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]}"#;
    const SINGLE: &str = r#"{"cniVersion":"0.4.0","name":"onenet","type":"bridge"}"#;

    #[test]
    fn lexically_first_file_wins_whatever_its_kind() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "20-list.conflist", LIST);
        write(dir.path(), "10-one.conf", SINGLE);
        write(dir.path(), "00-ignored.txt", "not json");
        let l = NetworkList::load_dir(dir.path()).unwrap();
        assert_eq!(l.name, "onenet");
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(
            l.source.as_deref(),
            Some(dir.path().join("10-one.conf").as_path())
        );
        fs::remove_file(dir.path().join("10-one.conf")).unwrap();
        let l = NetworkList::load_dir(dir.path()).unwrap();
        assert_eq!(l.name, "listnet");
        assert_eq!(l.plugins[1].plugin_type, "portmap");
        write(dir.path(), "15-x.json", SINGLE);
        assert_eq!(NetworkList::load_dir(dir.path()).unwrap().name, "onenet");
    }

    #[test]
    fn missing_or_empty_conf_dir_is_no_config() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            NetworkList::load_dir(dir.path()),
            Err(CniError::NoConfig { .. })
        ));
        assert!(matches!(
            NetworkList::load_dir(&dir.path().join("nope")),
            Err(CniError::NoConfig { .. })
        ));
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let o = Path::new("/x.conflist");
        let bad = [
            r#"{"cniVersion":"1.0.0","plugins":[{"type":"a"}]}"#,
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"x":1}]}"#,
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../evil"}]}"#,
            r#"{"name":"n","plugins":[{"type":"a"}]}"#,
            r#"[1]"#,
        ];
        for b in bad {
            let v = serde_json::from_str(b).unwrap();
            assert!(
                matches!(
                    NetworkList::from_list(v, o),
                    Err(CniError::InvalidConfig { .. })
                ),
                "{b}"
            );
        }
        let v =
            serde_json::from_str(r#"{"cniVersion":"9.9.9","name":"n","plugins":[{"type":"a"}]}"#)
                .unwrap();
        assert!(matches!(
            NetworkList::from_list(v, o),
            Err(CniError::UnsupportedVersion { .. })
        ));
        let v = serde_json::from_str(LIST).unwrap();
        assert!(matches!(
            NetworkList::from_single(v, o),
            Err(CniError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn plugin_stdin_injects_name_version_prev_result_and_declared_capabilities() {
        let l =
            NetworkList::from_list(serde_json::from_str(LIST).unwrap(), Path::new("/x")).unwrap();
        let mut caps = Map::new();
        caps.insert(
            "portMappings".into(),
            serde_json::json!([{"hostPort": 8080}]),
        );
        caps.insert("bandwidth".into(), serde_json::json!({"ingressRate": 1}));
        let prev = serde_json::json!({"cniVersion": "1.0.0", "ips": []});

        let first: Value =
            serde_json::from_slice(&l.plugin_stdin(&l.plugins[0], None, &caps)).unwrap();
        assert_eq!(first["name"], "listnet");
        assert_eq!(first["cniVersion"], "1.0.0");
        assert_eq!(first["bridge"], "cni0");
        assert!(first.get("prevResult").is_none());
        assert!(
            first.get("runtimeConfig").is_none(),
            "bridge declares no capabilities"
        );

        let second: Value =
            serde_json::from_slice(&l.plugin_stdin(&l.plugins[1], Some(&prev), &caps)).unwrap();
        assert_eq!(second["prevResult"], prev);
        assert_eq!(second["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert!(
            second["runtimeConfig"].get("bandwidth").is_none(),
            "bandwidth is declared false"
        );
    }

    #[test]
    fn list_round_trips_through_its_json_form() {
        let l =
            NetworkList::from_list(serde_json::from_str(LIST).unwrap(), Path::new("/x")).unwrap();
        let back = NetworkList::from_list(l.to_json(), Path::new("/cache")).unwrap();
        assert_eq!(back, l);
        assert!(l.version_at_least("0.4.0"));
        let old = NetworkList::from_single(serde_json::from_str(SINGLE).unwrap(), Path::new("/x"))
            .unwrap();
        assert!(old.version_at_least("0.4.0") && !old.version_at_least("1.0.0"));
    }
}
