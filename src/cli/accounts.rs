//! `pinline practice …` and `pinline user …`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::json;

use super::{Cli, Needs, io_error, print_json};
use crate::domain::account::{NewUser, PhoneNumber, Role, User, UserId};
use crate::error::{Error, Result};
use crate::registry::{ImportRow, Origin};
use crate::storage::Db;

#[derive(Debug, Subcommand)]
pub(super) enum PracticeCommand {
    /// Add a practice; prints its ID.
    Add {
        /// The practice's name (unique).
        name: String,
        /// Print `{"practice_id": …, "name": …}`.
        #[arg(long)]
        json: bool,
    },
    /// List practices.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// Add a provider or staff member with a first Support PIN; prints the
    /// new user ID.
    Add {
        /// The practice's ID or name.
        #[arg(long)]
        practice: String,
        /// provider or staff.
        #[arg(long)]
        role: Role,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Contact email.
        #[arg(long)]
        email: Option<String>,
        /// A phone number on file, E.164 (repeatable).
        #[arg(long = "phone")]
        phones: Vec<PhoneNumber>,
        /// Keep the host product's user ID instead of drawing one.
        #[arg(long)]
        user_id: Option<UserId>,
        /// Print `{"user_id": …, …}`.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Add many users from CSV or JSON lines, all or none; prints one JSON
    /// object per user.
    Import {
        /// The file (`-` for standard input).
        file: PathBuf,
        /// The file's format [default: from the extension, else sniffed].
        #[arg(long)]
        format: Option<ImportFormat>,
        /// Create practices named in the file that don't exist yet.
        #[arg(long)]
        create_practices: bool,
    },
    /// Print a one-time sign-in link (and its code) for the web pages;
    /// it works once, for 10 minutes.
    LoginLink(super::web::LoginLinkArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ImportFormat {
    /// Header `practice,role,name,email,phones`; phones split by spaces
    /// or semicolons; optional `user_id` column.
    Csv,
    /// One object a line with the same keys; `phones` a list or string.
    Jsonl,
}

pub(super) fn practice(cli: &Cli, cmd: &PracticeCommand) -> Result<ExitCode> {
    match cmd {
        PracticeCommand::Add { name, json } => {
            let db = Db::open(&cli.db)?;
            let practice = cli.registry_on(db, Needs::Nothing)?.add_practice(name)?;
            if *json {
                print_json(&practice)?;
            } else {
                println!("{}", practice.practice_id);
            }
        }
        PracticeCommand::List { json } => {
            let practices = cli.registry(Needs::Nothing)?.practices()?;
            if *json {
                print_json(&practices)?;
            } else {
                for p in practices {
                    println!("{}\t{}", p.practice_id, p.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn user(cli: &Cli, cmd: &UserCommand) -> Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            practice,
            role,
            name,
            email,
            phones,
            user_id,
            json,
        } => {
            let new = NewUser {
                user_id: *user_id,
                role: *role,
                name: name.clone(),
                email: clean_email(email.as_deref())?,
                phones: phones.clone(),
            };
            let registry = cli.registry(Needs::BothKeys)?;
            let user = registry.add_user(practice, &new, &Origin::cli())?;
            if *json {
                print_json(&user)?;
            } else {
                println!("{}", user.user_id);
            }
        }
        UserCommand::List { json } => {
            let users = cli.registry(Needs::Nothing)?.users()?;
            if *json {
                print_json(&users)?;
            } else {
                users.iter().for_each(print_user_line);
            }
        }
        UserCommand::Import {
            file,
            format,
            create_practices,
        } => import(cli, file, *format, *create_practices)?,
        UserCommand::LoginLink(args) => super::web::login_link(cli, args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_user_line(u: &User) {
    let phones: Vec<&str> = u.phones.iter().map(PhoneNumber::as_str).collect();
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}",
        u.user_id,
        u.role,
        u.practice,
        u.name,
        u.email.as_deref().unwrap_or("-"),
        if phones.is_empty() {
            "-".to_owned()
        } else {
            phones.join(" ")
        }
    );
}

fn clean_email(email: Option<&str>) -> Result<Option<String>> {
    match email.map(str::trim).filter(|e| !e.is_empty()) {
        None => Ok(None),
        Some(e) if e.contains('@') && !e.contains(char::is_whitespace) => Ok(Some(e.to_owned())),
        Some(e) => Err(Error::Invalid(format!("email {e:?} is not an address"))),
    }
}

fn import(cli: &Cli, file: &PathBuf, format: Option<ImportFormat>, create: bool) -> Result<()> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(io_error("cannot read standard input"))?
    } else {
        std::fs::read_to_string(file)
            .map_err(io_error(format!("cannot read {}", file.display())))?
    };
    let format = format.unwrap_or_else(|| guess_format(file, &text));
    let rows = match format {
        ImportFormat::Csv => parse_csv(&text)?,
        ImportFormat::Jsonl => parse_jsonl(&text)?,
    };
    let registry = cli.registry(Needs::BothKeys)?;
    let added = registry.import_users(&rows, create, &Origin::cli())?;
    // Printed only after the commit, so every ID shown exists.
    for (line, user) in added {
        print_json(&json!({
            "line": line,
            "user_id": user.user_id,
            "name": user.name,
            "role": user.role,
            "practice_id": user.practice_id,
        }))?;
    }
    Ok(())
}

fn guess_format(file: &std::path::Path, text: &str) -> ImportFormat {
    match file.extension().and_then(|e| e.to_str()) {
        Some("csv") => ImportFormat::Csv,
        Some("jsonl" | "ndjson" | "json") => ImportFormat::Jsonl,
        _ if text.trim_start().starts_with('{') => ImportFormat::Jsonl,
        _ => ImportFormat::Csv,
    }
}

/// One user as written in an import file, before validation.
#[derive(Debug, Deserialize)]
struct RawUser {
    practice: String,
    role: String,
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phones: Phones,
    #[serde(default)]
    user_id: Option<serde_json::Value>,
}

/// Phones as a JSON list, or as one string split on spaces or semicolons.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Phones {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

/// A CSV row. Every cell is read as text: left to infer types, the CSV
/// reader would turn `+15550100` into a number and drop its `+`.
#[derive(Debug, Deserialize)]
struct CsvUser {
    practice: String,
    role: String,
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phones: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

impl From<CsvUser> for RawUser {
    fn from(row: CsvUser) -> Self {
        Self {
            practice: row.practice,
            role: row.role,
            name: row.name,
            email: row.email,
            phones: row.phones.map_or(Phones::None, Phones::Text),
            user_id: row.user_id.map(serde_json::Value::String),
        }
    }
}

impl RawUser {
    fn validate(self, line: usize) -> Result<ImportRow> {
        let at_line = |e: Error| Error::Invalid(format!("line {line}: {e}"));
        let phones = match self.phones {
            Phones::None => Vec::new(),
            Phones::List(list) => list,
            Phones::Text(text) => text
                .split(|c: char| c == ';' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        let user_id = match self.user_id {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
            Some(serde_json::Value::String(s)) => Some(s.parse::<UserId>()),
            Some(other) => Some(other.to_string().parse::<UserId>()),
        };
        let user = NewUser {
            user_id: user_id.transpose().map_err(|e| at_line(e.into()))?,
            role: self
                .role
                .parse()
                .map_err(|e: crate::domain::account::ParseError| at_line(e.into()))?,
            name: self.name.trim().to_owned(),
            email: clean_email(self.email.as_deref()).map_err(at_line)?,
            phones: phones
                .iter()
                .map(|p| PhoneNumber::parse(p))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| at_line(e.into()))?,
        };
        if user.name.is_empty() {
            return Err(at_line(Error::Invalid("a user needs a name".into())));
        }
        Ok(ImportRow {
            line,
            practice: self.practice,
            user,
        })
    }
}

fn parse_csv(text: &str) -> Result<Vec<ImportRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Error::Invalid(format!("line 1: {}", csv_reason(&e))))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            Error::Invalid(format!("line {line}: {}", csv_reason(&e)))
        })?;
        let line = record.position().map_or(0, |p| p.line()) as usize;
        let raw: CsvUser = record
            .deserialize(Some(&headers))
            .map_err(|e| Error::Invalid(format!("line {line}: {}", csv_reason(&e))))?;
        rows.push(RawUser::from(raw).validate(line)?);
    }
    Ok(rows)
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
        _ => e.to_string(),
    }
}

fn parse_jsonl(text: &str) -> Result<Vec<ImportRow>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawUser = serde_json::from_str(line)
            .map_err(|e| Error::Invalid(format!("line {}: {e}", i + 1)))?;
        rows.push(raw.validate(i + 1)?);
    }
    Ok(rows)
}
