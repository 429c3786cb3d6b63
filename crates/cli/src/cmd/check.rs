//! `weir check`: every problem of a pipeline file, with its key path, without running it.

use std::process::ExitCode;

use weir_pipeline::config;

/// Prints config errors, one per line, and returns the exit code for them.
pub(crate) fn report(errors: &[weir_core::Error], pipeline: &std::path::Path) -> ExitCode {
    eprintln!(
        "weir: {} has {} problem{}:",
        pipeline.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        eprintln!("  {e}");
    }
    ExitCode::from(2)
}

pub(crate) fn plan(
    pipeline: &std::path::Path,
    sets: &[String],
) -> Result<config::Plan, Vec<weir_core::Error>> {
    let file = config::load(pipeline, sets)?;
    let plan = config::Plan::new(file)?;
    let pre = plan.preflight();
    if pre.is_empty() {
        Ok(plan)
    } else {
        Err(pre)
    }
}

pub(crate) fn check(pipeline: &std::path::Path, sets: &[String]) -> anyhow::Result<ExitCode> {
    match plan(pipeline, sets) {
        Ok(p) => {
            let mut names: Vec<_> = p.schemas.iter().collect();
            names.sort_by_key(|(n, _)| n.as_str());
            println!("{}: ok", pipeline.display());
            for (name, schema) in names {
                let fields: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| format!("{}: {}", f.name(), f.data_type()))
                    .collect();
                println!("  {name}: {}", fields.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => Ok(report(&errors, pipeline)),
    }
}
