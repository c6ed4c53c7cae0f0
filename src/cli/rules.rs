//! `tandem rules`: the rule set of the file as Markdown or HTML (the console's rule-set page), for
//! a wiki the operations team reads during an incident.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{load_config, ConfigArg};
use crate::console::rules;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Markdown,
    Html,
    Json,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long, value_enum, default_value_t = RulesFormat::Markdown)]
    pub format: RulesFormat,
}

pub fn run(args: RulesArgs) -> ExitCode {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let doc = rules::document(&config);
    match args.format {
        RulesFormat::Markdown => print!("{}", rules::markdown(&doc)),
        RulesFormat::Html => print!("{}", rules::html_page(&doc)),
        RulesFormat::Json => match serde_json::to_string_pretty(&doc) {
            Ok(t) => println!("{t}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
    }
    ExitCode::SUCCESS
}
