//! Hot reload: a debounced watcher on the plugins folder. Editors and
//! copies write files in bursts; debouncing turns a burst into one reload,
//! and a half-written file that fails to load is simply retried on the
//! next event while the old version keeps serving.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use super::{is_wasm, Plugins};

/// Keeps the watch alive; dropping it stops watching.
pub(crate) struct Watcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

impl Watcher {
    /// Watches `dir` (creating it if missing) and reloads changed `.wasm` files.
    pub(crate) fn start(plugins: Arc<Plugins>, dir: &Path) -> notify::Result<Self> {
        std::fs::create_dir_all(dir).map_err(notify::Error::io)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BTreeSet<PathBuf>>();
        let mut debouncer = new_debouncer(
            Duration::from_millis(150),
            None,
            move |result: DebounceEventResult| match result {
                Ok(events) => {
                    // Reads are events too (opening a file to load it is
                    // one): only changes count, or every load would
                    // trigger the next.
                    let paths: BTreeSet<PathBuf> = events
                        .iter()
                        .filter(|e| !matches!(e.kind, notify::EventKind::Access(_)))
                        .flat_map(|e| e.paths.iter())
                        .filter(|p| is_wasm(p))
                        .cloned()
                        .collect();
                    if !paths.is_empty() {
                        let _ = tx.send(paths);
                    }
                }
                Err(errors) => {
                    for err in errors {
                        tracing::warn!(cause = %err, "plugin watcher error");
                    }
                }
            },
        )?;
        debouncer.watch(dir, RecursiveMode::NonRecursive)?;
        tokio::spawn(async move {
            while let Some(paths) = rx.recv().await {
                for path in paths {
                    tracing::debug!(file = %path.display(), "plugin file changed");
                    plugins.sync_file(&path).await;
                }
            }
        });
        tracing::info!(dir = %dir.display(), "watching plugins folder");
        Ok(Self {
            _debouncer: debouncer,
        })
    }
}
