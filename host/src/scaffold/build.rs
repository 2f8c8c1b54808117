//! `switchboard plugin build`: one plugin folder to one component, with
//! the folder's own language toolchain.
//!
//! Each language is a few commands run in the folder, echoed as they run
//! (a first Rust or JavaScript build takes a while), with the component
//! written to `<out>/<name>.wasm` through a temporary file and a rename,
//! so a running server's plugin watcher never sees half a file.
//!
//! Rust prefers rustup's `wasm32-wasip2` target, whose cargo makes a
//! component directly; where rustup cannot add it, it falls back to
//! Debian's `rustc-web` with `-Zbuild-std` for `wasm32-unknown-unknown`
//! and `wasm-tools component new` (what `scripts/build-guests.sh` does).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{detect, io, name_of, Lang, ScaffoldError};

/// Builds the plugin folder `dir` into `out/<name>.wasm`; returns that path.
pub fn build(dir: &Path, out: &Path) -> Result<PathBuf, ScaffoldError> {
    // Steps run inside the folder: every path handed to them is absolute.
    let dir = &dir.canonicalize().map_err(io(dir))?;
    let lang = detect(dir)?;
    let name = name_of(dir)?;
    let work = dir.join("target").join("switchboard");
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let out = &out.canonicalize().map_err(io(out))?;
    eprintln!("plugin build: {name} ({lang:?}) in {}", dir.display());
    let built = match lang {
        Lang::Rust => rust(dir, &name, &work)?,
        Lang::Python => python(dir, &work)?,
        Lang::Js => js(dir, &work)?,
        Lang::C => c(dir, &work)?,
    };
    if !built.is_file() {
        return Err(ScaffoldError::NoOutput(built));
    }
    let target = out.join(format!("{name}.wasm"));
    let partial = out.join(format!(".{name}.wasm.partial"));
    std::fs::copy(&built, &partial).map_err(io(&partial))?;
    std::fs::rename(&partial, &target).map_err(io(&target))?;
    let size = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    eprintln!("plugin build: wrote {} ({size} bytes)", target.display());
    Ok(target)
}

/// Runs one step in `dir`, its output shown; fails with the step's name.
fn run(step: &str, dir: &Path, command: &mut Command) -> Result<(), ScaffoldError> {
    eprintln!("  {step}");
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command.current_dir(dir).status().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ScaffoldError::ToolMissing {
                tool: program.clone(),
                hint: hint(&program),
            }
        } else {
            ScaffoldError::Io {
                path: PathBuf::from(&program),
                source: e,
            }
        }
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(ScaffoldError::StepFailed {
            step: step.to_owned(),
            status,
        })
    }
}

/// Where a missing program comes from.
fn hint(program: &str) -> &'static str {
    match program {
        "wasm-tools" => "cargo install wasm-tools (scripts/install-guest-toolchain.sh does)",
        "wit-bindgen" => "cargo install wit-bindgen-cli --version 0.46.0",
        "npm" | "npx" => "install Node.js and npm",
        p if p.starts_with("clang") => {
            "apt-get install clang-19 wasi-libc libclang-rt-19-dev-wasm32"
        }
        p if p.starts_with("python") => "install Python 3 and `pip install componentize-py`",
        _ => "see scripts/install-guest-toolchain.sh",
    }
}

/// Whether rustup's toolchain has (or can add) `wasm32-wasip2`.
fn rustup_has_wasip2() -> bool {
    let listed = |args: &[&str]| {
        Command::new("rustup")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
    };
    if std::env::var_os("SB_GUEST_TOOLCHAIN").is_some_and(|v| v == "debian") {
        return false;
    }
    listed(&["target", "list", "--installed"])
        || (Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status()
            .is_ok_and(|s| s.success())
            && listed(&["target", "list", "--installed"]))
}

fn rust(dir: &Path, name: &str, work: &Path) -> Result<PathBuf, ScaffoldError> {
    let file = format!("{}.wasm", name.replace('-', "_"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    if rustup_has_wasip2() {
        let mut cargo = Command::new("cargo");
        cargo
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .arg("--target-dir")
            .arg(&target_dir);
        run("cargo build --target wasm32-wasip2", dir, &mut cargo)?;
        return Ok(target_dir.join("wasm32-wasip2/release").join(file));
    }
    // Debian's wasm-capable rustc, with std built for the target.
    let mut cargo = Command::new("/usr/bin/cargo");
    cargo
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .args(["-Zbuild-std=std,panic_abort", "--target-dir"])
        .arg(&target_dir)
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "wasm-ld-19")
        .env_remove("RUSTFLAGS");
    run(
        "cargo build --target wasm32-unknown-unknown (Debian rustc-web)",
        dir,
        &mut cargo,
    )?;
    let core = target_dir.join("wasm32-unknown-unknown/release").join(file);
    componentize(dir, &core, work)
}

/// Wraps a core module (whose bindings embed the component type) as a
/// component: the last step of the Debian Rust and the C builds.
fn componentize(dir: &Path, core: &Path, work: &Path) -> Result<PathBuf, ScaffoldError> {
    let component = work.join("component.wasm");
    run(
        "wasm-tools component new",
        dir,
        Command::new("wasm-tools")
            .args(["component", "new"])
            .arg(core)
            .arg("-o")
            .arg(&component),
    )?;
    Ok(component)
}

fn python(dir: &Path, work: &Path) -> Result<PathBuf, ScaffoldError> {
    let out = work.join("component.wasm");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    // componentize-py's package has no `__main__`; call its entry point.
    let entry = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())";
    run(
        "componentize-py componentize app",
        dir,
        Command::new(python)
            .args(["-c", entry, "-d", "wit", "-w", "plugin", "componentize"])
            .args(["--stub-wasi", "app", "-o"])
            .arg(&out)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    )?;
    Ok(out)
}

fn js(dir: &Path, work: &Path) -> Result<PathBuf, ScaffoldError> {
    if !dir
        .join("node_modules/@bytecodealliance/componentize-js")
        .is_dir()
    {
        let mut npm = Command::new("npm");
        npm.args(["install", "--no-audit", "--no-fund"]);
        run("npm install (componentize-js)", dir, &mut npm)?;
    }
    let out = work.join("component.wasm");
    run(
        "componentize-js app.js",
        dir,
        Command::new("npx")
            .args(["--no-install", "componentize-js", "app.js", "--wit", "wit"])
            .args(["--world-name", "plugin", "--disable"])
            .args(["stdio", "random", "clocks", "http", "fetch-event", "-o"])
            .arg(&out),
    )?;
    Ok(out)
}

fn c(dir: &Path, work: &Path) -> Result<PathBuf, ScaffoldError> {
    let generated = work.join("gen");
    run(
        "wit-bindgen c",
        dir,
        Command::new("wit-bindgen")
            .args(["c", "wit", "--world", "plugin", "--out-dir"])
            .arg(&generated),
    )?;
    let core = work.join("core.wasm");
    // wasi-libc's reactor start: no `main`, and nothing that needs WASI
    // is linked, so the component imports only the host interface.
    let clang = std::env::var("CC_WASM").unwrap_or_else(|_| "clang-19".into());
    run(
        "clang --target=wasm32-wasi",
        dir,
        Command::new(clang)
            .args(["--target=wasm32-wasi", "-O2", "-mexec-model=reactor"])
            .arg("-I")
            .arg(&generated)
            .arg("app.c")
            .arg(generated.join("plugin.c"))
            .arg(generated.join("plugin_component_type.o"))
            .arg("-o")
            .arg(&core),
    )?;
    componentize(dir, &core, work)
}
