//! Verilates each module of `rtl/` into its own C++ model (cached in OUT_DIR: cargo reruns this
//! only when the RTL or the shim changes), and compiles the models, Verilator's runtime and the C
//! ABI shim into one static library linked into the crate.
//!
//! One model per module, not one top holding all three: Verilator re-evaluates a model's whole
//! input-driven logic whenever any of its inputs changes, so a shared model would pay for the
//! LZ4 modules' logic on every CRC clock.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The modules, each `rtl/<name>.v` with top module `<name>`, verilated as class `V<name>`.
const MODULES: &[&str] = &["crc64", "lz4_decompress", "lz4_compress"];
/// Modules the tops instantiate, each `rtl/<name>.v`, given to Verilator with every top.
const LIBRARY_MODULES: &[&str] = &["ferrite_ram", "byte_window", "output_beat"];
/// Verilator's runtime, compiled alongside the models (they call into it; the VCD writer serves
/// the waveform dump).
const VERILATOR_RUNTIME_SOURCES: &[&str] = &[
    "verilated.cpp",
    "verilated_threads.cpp",
    "verilated_vcd_c.cpp",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let rtl_dir = manifest_dir.join("..").join("rtl");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    for module in MODULES.iter().chain(LIBRARY_MODULES) {
        println!(
            "cargo:rerun-if-changed={}",
            rtl_dir.join(format!("{module}.v")).display()
        );
    }
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    println!("cargo:rerun-if-env-changed=VERILATOR_ROOT");

    let verilator_root = verilator_root();
    let include = verilator_root.join("include");
    // Everything goes into one static library, so link order between the parts never matters.
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .opt_level(2)
        .define("VM_TRACE", "1")
        .define("VM_TRACE_VCD", "1")
        .define("VM_TRACE_FST", "0")
        .define("VM_COVERAGE", "0")
        .define("VM_SC", "0")
        .flag("-faligned-new")
        .include(&include)
        .include(include.join("vltstd"))
        .warnings(false)
        .file("csrc/shim.cpp");
    for module in MODULES {
        let model_dir = out_dir.join("verilated").join(module);
        verilate(&rtl_dir, module, &model_dir);
        build.include(&model_dir);
        for model_source in model_sources(&model_dir) {
            build.file(model_source);
        }
    }
    for runtime_source in VERILATOR_RUNTIME_SOURCES {
        build.file(include.join(runtime_source));
    }
    build.compile("ferrite_rtl");
    println!("cargo:rustc-link-lib=dylib=pthread");
}

/// The C++ files Verilator generated for one model (it regenerates the directory every run).
fn model_sources(model_dir: &Path) -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(model_dir)
        .expect("verilator wrote the model directory")
        .map(|entry| entry.expect("readable model directory").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "cpp"))
        .collect();
    sources.sort();
    assert!(
        !sources.is_empty(),
        "verilator generated no C++ in {}",
        model_dir.display()
    );
    sources
}

/// Where Verilator keeps its runtime headers and sources; stops the build if Verilator is missing.
fn verilator_root() -> PathBuf {
    if let Ok(root) = env::var("VERILATOR_ROOT") {
        return PathBuf::from(root);
    }
    let output = Command::new("verilator")
        .arg("--getenv")
        .arg("VERILATOR_ROOT")
        .output();
    match output {
        Ok(output) if output.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim().to_string())
        }
        _ => panic!(
            "fpga-sim needs Verilator (5.x) on PATH to build the RTL model: \
             install it with `apt-get install verilator`"
        ),
    }
}

fn verilate(rtl_dir: &Path, module: &str, model_dir: &Path) {
    if model_dir.exists() {
        std::fs::remove_dir_all(model_dir).expect("the old model directory can be removed");
    }
    // Verilator's -Mdir makes only the last directory: a fresh OUT_DIR has no parent for it.
    std::fs::create_dir_all(model_dir).expect("the model directory can be made");
    let mut command = Command::new("verilator");
    command
        .arg("--cc")
        .args([
            "-O3",
            "--x-assign",
            "fast",
            "--x-initial",
            "fast",
            "--noassert",
        ])
        .arg("--trace")
        .args([
            "-Wall",
            "--top-module",
            module,
            "--prefix",
            &format!("V{module}"),
        ])
        .arg("-Mdir")
        .arg(model_dir)
        .arg(rtl_dir.join(format!("{module}.v")))
        .args(
            LIBRARY_MODULES
                .iter()
                .map(|library_module| rtl_dir.join(format!("{library_module}.v"))),
        );
    let status = command.status().unwrap_or_else(|error| {
        panic!("could not run verilator ({error}): install it with `apt-get install verilator`")
    });
    assert!(
        status.success(),
        "verilator failed to build the {module} model ({status})"
    );
}
