//! The set of loaded plugins, swapped atomically as a whole: lookups read
//! one consistent snapshot, and calls in flight keep the version they
//! started with.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bindings::types::{Operation, Transports};
use super::loaded::LoadedPlugin;

/// A walker as the registry serves it.
#[derive(Clone)]
pub struct WalkerEntry {
    /// The plugin serving it.
    pub plugin: Arc<LoadedPlugin>,
    /// Where it may be called.
    pub transports: Transports,
    /// Whether callers without a token may call it.
    pub anonymous: bool,
}

/// One consistent view of every loaded plugin, with lookup indexes.
#[derive(Default, Clone)]
pub struct Snapshot {
    files: BTreeMap<PathBuf, Arc<LoadedPlugin>>,
    walkers: HashMap<String, WalkerEntry>,
    sockets: HashMap<String, Arc<LoadedPlugin>>,
    guards: Vec<(String, Vec<Operation>, Arc<LoadedPlugin>)>,
}

impl Snapshot {
    /// A snapshot of these plugins.
    pub(crate) fn build(files: BTreeMap<PathBuf, Arc<LoadedPlugin>>) -> Self {
        let mut snapshot = Snapshot {
            files,
            ..Snapshot::default()
        };
        for plugin in snapshot.files.values() {
            for walker in &plugin.manifest.walkers {
                let entry = WalkerEntry {
                    plugin: plugin.clone(),
                    transports: walker.transports,
                    anonymous: walker.anonymous,
                };
                snapshot.walkers.insert(walker.name.clone(), entry);
            }
            for path in &plugin.manifest.sockets {
                snapshot.sockets.insert(path.clone(), plugin.clone());
            }
            for guard in &plugin.manifest.guards {
                snapshot.guards.push((
                    guard.target.clone(),
                    guard.operations.clone(),
                    plugin.clone(),
                ));
            }
        }
        snapshot
    }

    /// The plugins by file.
    pub fn files(&self) -> &BTreeMap<PathBuf, Arc<LoadedPlugin>> {
        &self.files
    }

    /// The plugin serving a walker, on which transports, for whom.
    pub fn walker(&self, name: &str) -> Option<&WalkerEntry> {
        self.walkers.get(name)
    }

    /// The plugin scripting a socket path.
    pub fn socket(&self, path: &str) -> Option<&Arc<LoadedPlugin>> {
        self.sockets.get(path)
    }

    /// Whether any guard is loaded (so callers can skip building requests).
    pub fn has_guards(&self) -> bool {
        !self.guards.is_empty()
    }

    /// The guards covering `op` on `target`, in file order.
    pub fn guards(&self, op: Operation, target: &str) -> Vec<Arc<LoadedPlugin>> {
        self.guards
            .iter()
            .filter(|(pattern, ops, _)| ops.contains(&op) && target_matches(pattern, target))
            .map(|(_, _, p)| p.clone())
            .collect()
    }

    /// Why `plugin` (about to replace whatever `file` held) clashes with
    /// another file's plugin, if it does.
    pub(crate) fn conflict(&self, file: &Path, plugin: &LoadedPlugin) -> Option<String> {
        for (other_file, other) in self.files.iter().filter(|(f, _)| f.as_path() != file) {
            if other.name == plugin.name {
                return Some(format!(
                    "plugin name `{}` is already used by {}",
                    plugin.name,
                    other_file.display()
                ));
            }
            for walker in &plugin.manifest.walkers {
                if other.manifest.walkers.iter().any(|w| w.name == walker.name) {
                    return Some(format!(
                        "walker `{}` is already served by `{}`",
                        walker.name, other.name
                    ));
                }
            }
            for path in &plugin.manifest.sockets {
                if other.manifest.sockets.contains(path) {
                    return Some(format!(
                        "socket path `{path}` is already scripted by `{}`",
                        other.name
                    ));
                }
            }
        }
        None
    }
}

/// `*` matches everything, `prefix*` matches a prefix, anything else exactly.
fn target_matches(pattern: &str, target: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => target.starts_with(prefix),
        None => pattern == target,
    }
}

#[cfg(test)]
mod tests {
    use super::target_matches;

    #[test]
    fn patterns() {
        assert!(target_matches("*", "anything"));
        assert!(target_matches("chat:*", "chat:room"));
        assert!(!target_matches("chat:*", "news"));
        assert!(target_matches("news", "news"));
        assert!(!target_matches("news", "newsy"));
    }
}
