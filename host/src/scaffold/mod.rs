//! `switchboard plugin new` and `switchboard plugin build`: a plugin
//! folder in Rust, Python, JavaScript or C that builds to a component with
//! one command, anywhere on disk.
//!
//! A new folder is self-contained: it carries the WIT the host was built
//! with (`wit/plugin.wit`), so its bindings always match the server that
//! made it, and a build needs nothing from this repository. The build
//! shells out to each language's own toolchain (cargo, componentize-py,
//! componentize-js, clang + wit-bindgen) — see [`build`].

pub mod build;

use std::path::{Path, PathBuf};

/// The WIT every plugin is built against, as the host itself reads it.
pub const WIT: &str = include_str!("../../../wit/plugin.wit");

/// The languages a plugin can be scaffolded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with wit-bindgen.
    Rust,
    /// Python with componentize-py.
    Python,
    /// JavaScript with componentize-js.
    Js,
    /// C with wit-bindgen's C generator, clang and wasi-libc.
    C,
}

impl Lang {
    /// The file whose presence says a folder is in this language.
    fn marker(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Python => "app.py",
            Lang::Js => "app.js",
            Lang::C => "app.c",
        }
    }

    /// The template's files, as (path in the folder, text with `{{name}}`
    /// and `{{ident}}` placeholders).
    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::Rust => &[
                ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
                ("src/lib.rs", include_str!("templates/rust/lib.rs")),
            ],
            Lang::Python => &[("app.py", include_str!("templates/python/app.py"))],
            Lang::Js => &[
                ("app.js", include_str!("templates/js/app.js")),
                ("package.json", include_str!("templates/js/package.json")),
            ],
            Lang::C => &[("app.c", include_str!("templates/c/app.c"))],
        }
    }

    /// The command that builds the folder, for its README.
    fn tools(self) -> &'static str {
        match self {
            Lang::Rust => "cargo (wasm32-wasip2 from rustup, or Debian's rustc-web) and wasm-tools",
            Lang::Python => "componentize-py (pip install componentize-py)",
            Lang::Js => "Node.js and npm (componentize-js is installed into node_modules)",
            Lang::C => {
                "clang, wasi-libc, wit-bindgen (cargo install wit-bindgen-cli) and wasm-tools"
            }
        }
    }
}

/// What went wrong scaffolding or building; the CLI prints it.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is not a plugin name.
    #[error("`{0}` is not a plugin name: use lowercase letters, digits and `-`, starting with a letter (at most 48)")]
    BadName(String),
    /// `new` never overwrites.
    #[error("{0} already exists")]
    Exists(PathBuf),
    /// `build` found no marker file.
    #[error("{0} is not a plugin folder: no Cargo.toml, app.py, app.js or app.c")]
    NotAPlugin(PathBuf),
    /// A toolchain program is missing.
    #[error("`{tool}` is not installed: {hint}")]
    ToolMissing {
        /// The program.
        tool: String,
        /// How to get it.
        hint: &'static str,
    },
    /// A toolchain step failed; its own output was shown.
    #[error("{step} failed ({status})")]
    StepFailed {
        /// What was being done.
        step: String,
        /// How it ended.
        status: std::process::ExitStatus,
    },
    /// A step said it succeeded but left no output.
    #[error("{0} was not produced")]
    NoOutput(PathBuf),
    /// Reading or writing files.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Checks a plugin name: it becomes a file name, a crate name and, with
/// `-` as `_`, a walker name, so it is kept to what all three accept.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let mut chars = name.chars();
    let ok = name.len() <= 48
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ScaffoldError::BadName(name.to_owned()))
    }
}

/// Writes a new plugin folder `dir` named `name` in `lang`; returns the
/// files written.
pub fn new(dir: &Path, name: &str, lang: Lang) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(name)?;
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir.to_owned()));
    }
    let ident = name.replace('-', "_");
    let readme = format!(
        "# {name}\n\nA Switchboard plugin in {lang:?}. Build it into the server's plugins folder with\n`switchboard plugin build {folder}` (needs {tools}); the server loads it\nwithout a restart. Call it: `{{\"type\":\"walker\",\"walker\":\"{ident}\",\"context\":{{\"n\":1}}}}`.\n",
        folder = dir.display(),
        tools = lang.tools(),
    );
    let mut files: Vec<(String, String)> = lang
        .files()
        .iter()
        .map(|(path, text)| {
            let text = text.replace("{{name}}", name).replace("{{ident}}", &ident);
            ((*path).to_owned(), text)
        })
        .collect();
    files.push(("wit/plugin.wit".into(), WIT.to_owned()));
    files.push(("README.md".into(), readme));
    let mut written = Vec::new();
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// The language of a plugin folder, from its marker file.
pub fn detect(dir: &Path) -> Result<Lang, ScaffoldError> {
    [Lang::Rust, Lang::Python, Lang::Js, Lang::C]
        .into_iter()
        .find(|lang| dir.join(lang.marker()).is_file())
        .ok_or_else(|| ScaffoldError::NotAPlugin(dir.to_owned()))
}

/// The plugin's name: the folder's name (which `new` made it).
pub fn name_of(dir: &Path) -> Result<String, ScaffoldError> {
    let canonical = dir.canonicalize().map_err(io(dir))?;
    let name = canonical
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    check_name(&name)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["hello", "my-plugin", "a1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Hello",
            "1a",
            "a_b",
            "a-",
            "../x",
            "a b",
            &"a".repeat(49),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_folder_has_the_wit_and_substituted_names() {
        let dir = tempfile::tempdir().expect("dir");
        for lang in [Lang::Rust, Lang::Python, Lang::Js, Lang::C] {
            let folder = dir.path().join(format!("p-{lang:?}").to_lowercase());
            let files = new(&folder, "my-thing", lang).expect("new");
            assert!(files.iter().any(|f| f.ends_with("wit/plugin.wit")));
            assert_eq!(detect(&folder).expect("detect"), lang);
            for file in files {
                let text = std::fs::read_to_string(&file).expect("read");
                assert!(
                    !text.contains("{{"),
                    "{} keeps a placeholder",
                    file.display()
                );
            }
            assert!(matches!(
                new(&folder, "my-thing", lang),
                Err(ScaffoldError::Exists(_))
            ));
        }
    }
}
