//! What the command line asked Criterion to do, read the way Criterion reads it.

/// Only `Bench` produces estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bench,
    List,
    Test,
    Profile,
}

/// The mode of this process's command line.
pub fn mode() -> Mode {
    mode_of(std::env::args().skip(1))
}

/// The mode of `args` (the arguments after the program name).
pub fn mode_of(args: impl IntoIterator<Item = String>) -> Mode {
    let args: Vec<String> = args.into_iter().collect();
    if args.iter().any(|a| a == "--list") {
        Mode::List
    } else if args.iter().any(|a| a == "--test") {
        Mode::Test
    } else if args
        .iter()
        .any(|a| a == "--profile-time" || a.starts_with("--profile-time="))
    {
        Mode::Profile
    } else {
        Mode::Bench
    }
}

/// Criterion options that take a value.
const WITH_VALUE: &[&str] = &[
    "--save-baseline",
    "-s",
    "--baseline",
    "-b",
    "--baseline-lenient",
    "--load-baseline",
    "--profile-time",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
    "--color",
    "-c",
    "--format",
];

/// Criterion's positional filter in `args`, if any.
pub fn filter(args: &[String]) -> Option<String> {
    let mut filter = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if WITH_VALUE.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            filter = Some(a.clone());
        }
        i += 1;
    }
    filter
}

/// Whether Criterion's positional filter (a regex, or an exact id with `--exact`) in `args`
/// selects `full_id`. Used only to decide whether to report a skip; Criterion decides what
/// runs.
pub fn selects(args: &[String], full_id: &str) -> bool {
    let exact = args.iter().any(|a| a == "--exact");
    match filter(args) {
        None => true,
        Some(f) if exact => f == full_id,
        Some(f) => regex::Regex::new(&f)
            .map(|r| r.is_match(full_id))
            .unwrap_or(true),
    }
}
