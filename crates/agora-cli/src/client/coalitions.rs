//! `agora coalition`, `agora pledge`, `agora proposal` and `agora vote`: found coalitions, set
//! goals, pledge and report fulfilment, delegate, propose, vote and run passed proposals, pool
//! data, fund the treasury, and export the decision register.

use std::path::PathBuf;

use agora_domain::Timestamp;
use agora_domain::ledger::Currency;
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{Value, json};

use super::datasets::{FileFormat, format_of, upload_to};
use super::orgs::print_one;
use super::output::{self, Format, Table};
use super::{ClientArgs, connect, resolve_org};
use crate::{Failure, exit};

/// Coalitions: found, show, goals, delegation, pooled data, treasury, register.
#[derive(Debug, Subcommand)]
pub enum CoalitionCommand {
    /// Found a coalition; your organisation becomes its first steward.
    ///
    /// The charter (a JSON file) holds the decision rules; every field left out takes its
    /// default, and an unsafe charter is refused naming each field at fault (docs/coalitions.md).
    #[command(after_help = "Example:\n  \
        agora coalition found \"Mask Makers Alliance\" --purpose \"A million masks a week\" \\\n    \
        --query-purpose capacity-planning --goal \"A million masks a week|1000000|masks/week|2027-06-01\"")]
    Found {
        name: String,
        #[arg(long)]
        purpose: String,
        /// A JSON file with the charter's fields that differ from the defaults.
        #[arg(long, value_name = "FILE")]
        charter: Option<PathBuf>,
        /// A purpose members may declare when querying pooled data (repeat for more).
        #[arg(long = "query-purpose", value_name = "PURPOSE")]
        query_purposes: Vec<String>,
        /// A goal as `TITLE|TARGET|UNIT|DEADLINE` (the title is also its metric; repeat for more).
        #[arg(long = "goal", value_name = "GOAL")]
        goals: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the coalitions.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a coalition: members, goals and progress, pledges, proposals, published statistics.
    Show {
        /// The coalition, by id or name.
        coalition: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a goal or sub-goal (stewards).
    Goal {
        coalition: String,
        #[arg(long)]
        title: String,
        /// What is counted (default: the title).
        #[arg(long)]
        metric: Option<String>,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        target: i64,
        /// YYYY-MM-DD or an RFC 3339 time.
        #[arg(long)]
        deadline: String,
        /// The parent goal of a sub-goal.
        #[arg(long, value_name = "GOAL_ID")]
        parent: Option<String>,
        /// The sub-goal's weight in its parent's progress.
        #[arg(long, default_value_t = 0)]
        weight: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Let another member vote for your organisation (on one topic, or on all); without --to,
    /// withdraw the delegation. A delegation that would close a cycle is refused.
    Delegate {
        coalition: String,
        /// The member that votes for you, by id or name.
        #[arg(long, value_name = "ORG")]
        to: Option<String>,
        #[arg(long)]
        topic: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Contribute your organisation's rows to a pooled dataset (the first contribution creates
    /// it). Leave out the `contributor` column: Agora sets it to your organisation.
    Contribute {
        coalition: String,
        dataset: String,
        file: PathBuf,
        #[arg(long, value_enum, value_name = "FORMAT")]
        file_format: Option<FileFormat>,
        /// Print no progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Class a pooled dataset's columns, as COLUMN=CLASS (stewards).
    Classify {
        coalition: String,
        dataset: String,
        #[arg(required = true, value_name = "COLUMN=CLASS")]
        classes: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Move money from your available balance into the coalition's treasury.
    Fund {
        coalition: String,
        /// In the currency's notation, e.g. 500.00.
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// Your reference; the same reference moves the money once.
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the decision register as Popolo motions and vote events (JSON).
    Register {
        coalition: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Pledges towards a coalition's goals.
#[derive(Debug, Subcommand)]
pub enum PledgeCommand {
    /// Pledge a quantity towards a goal by a date, optionally on a condition.
    #[command(after_help = "Example:\n  \
        agora pledge create \"Mask Makers Alliance\" --goal gol_… --quantity 70000 --due 2027-03-01 --if-others 3")]
    Create {
        coalition: String,
        #[arg(long, value_name = "GOAL_ID")]
        goal: String,
        #[arg(long)]
        quantity: i64,
        /// YYYY-MM-DD or an RFC 3339 time.
        #[arg(long)]
        due: String,
        /// Only if at least N other members pledge to the same goal.
        #[arg(long, value_name = "N", conflicts_with = "if_total")]
        if_others: Option<u32>,
        /// Only if the goal's pledges reach this quantity.
        #[arg(long, value_name = "QUANTITY")]
        if_total: Option<i64>,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List a coalition's pledges: active or waiting on their condition, fulfilled, overdue.
    List {
        coalition: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Report a quantity delivered against one of your pledges.
    Fulfil {
        coalition: String,
        #[arg(value_name = "PLEDGE_ID")]
        pledge: String,
        #[arg(long)]
        quantity: i64,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Proposals: typed actions that run when the members pass them.
#[derive(Debug, Subcommand)]
pub enum ProposalCommand {
    /// Open a proposal. Each --action is a JSON object with a `type`: admit_member,
    /// remove_member, adopt_protocol, publish_statistics, release_funds, amend_charter.
    #[command(after_help = "Example:\n  \
        agora proposal create \"Mask Makers Alliance\" --title \"Admit ClearShield\" --topic membership \\\n    \
        --action '{\"type\": \"admit_member\", \"org_id\": \"org_…\"}'")]
    Create {
        coalition: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        body: String,
        /// The topic delegations follow (default `general`).
        #[arg(long)]
        topic: Option<String>,
        #[arg(long = "action", required = true, value_name = "JSON")]
        actions: Vec<String>,
        /// The voting period in hours, within the charter's bounds (default: the charter's).
        #[arg(long, value_name = "HOURS")]
        voting_hours: Option<i64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List a coalition's proposals with their tallies, newest first.
    List {
        coalition: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a proposal: its actions, tally (every counted vote, its weight and delegation path)
    /// and executions.
    Show {
        #[arg(value_name = "PROPOSAL_ID")]
        proposal: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run a passed proposal's actions now (the server also does it by itself).
    Execute {
        #[arg(value_name = "PROPOSAL_ID")]
        proposal: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Vote on a proposal for your organisation.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  agora vote prp_… yes --reason \"more FFP2 capacity\"")]
pub struct VoteCommand {
    #[arg(value_name = "PROPOSAL_ID")]
    pub proposal: String,
    /// yes, no, abstain, or block where the charter allows blocks.
    #[arg(value_parser = ["yes", "no", "abstain", "block"])]
    pub choice: String,
    #[arg(long, default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Deserialize)]
struct Member {
    org_id: String,
    name: String,
    role: String,
}

#[derive(Debug, Deserialize)]
struct Goal {
    id: String,
    parent: Option<String>,
    title: String,
    unit: String,
    target: i64,
    pledged: i64,
    fulfilled: i64,
    pledged_bps: u32,
    fulfilled_bps: u32,
    deadline: Timestamp,
}

#[derive(Debug, Deserialize)]
struct Pledge {
    id: String,
    goal_id: String,
    member_name: String,
    quantity: i64,
    fulfilled: i64,
    due: Timestamp,
    condition: Option<Value>,
    active: bool,
    overdue: bool,
}

#[derive(Debug, Deserialize)]
struct Publication {
    title: String,
    columns: Vec<String>,
    rows: Vec<Value>,
    rows_suppressed: u64,
}

#[derive(Debug, Deserialize)]
struct Coalition {
    id: String,
    name: String,
    purpose: String,
    charter_version: u32,
    members: Vec<Member>,
    goals: Vec<Goal>,
    pledges: Vec<Pledge>,
    pooled_datasets: Vec<String>,
    publications: Vec<Publication>,
}

#[derive(Debug, Deserialize)]
struct Summary {
    id: String,
    name: String,
    purpose: String,
    members: usize,
}

#[derive(Debug, Deserialize)]
struct CountedVote {
    voter: String,
    choice: String,
    weight: u64,
    via: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct TallyView {
    yes: u64,
    no: u64,
    abstain: u64,
    block: u64,
    total_power: u64,
    support_reached: bool,
    quorum_reached: bool,
    votes: Vec<CountedVote>,
}

#[derive(Debug, Deserialize)]
struct Execution {
    action: String,
    succeeded: bool,
    detail: String,
}

#[derive(Debug, Deserialize)]
struct Proposal {
    id: String,
    number: i64,
    title: String,
    topic: String,
    status: String,
    requirement: String,
    closes_at: Timestamp,
    actions: Vec<Value>,
    tally: TallyView,
    executions: Vec<Execution>,
}

fn usage(message: String) -> Failure {
    Failure {
        code: exit::USAGE,
        error: anyhow::anyhow!(message),
    }
}

/// `2027-03-01` or an RFC 3339 time, as the API's RFC 3339.
fn instant(text: &str, field: &str) -> Result<String, Failure> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    Timestamp::parse_rfc3339(&full)
        .map(|at| at.to_rfc3339())
        .map_err(|_| {
            usage(format!(
                "--{field} `{text}` is not YYYY-MM-DD nor an RFC 3339 time"
            ))
        })
}

fn bps(value: u32) -> String {
    format!("{}.{:02}%", value / 100, value % 100)
}

fn coalition_text(coalitions: &[Coalition]) -> String {
    let mut text = String::new();
    for coalition in coalitions {
        text.push_str(&format!(
            "{} ({}), charter version {}\n{}\n\n",
            coalition.name, coalition.id, coalition.charter_version, coalition.purpose
        ));
        let mut members = Table::new(&["member", "id", "role"]);
        for member in &coalition.members {
            members.row(vec![
                member.name.clone(),
                member.org_id.clone(),
                member.role.clone(),
            ]);
        }
        text.push_str(&members.render("No members."));
        text.push('\n');
        let mut goals = Table::new(&["goal", "id", "target", "pledged", "fulfilled", "deadline"]);
        for goal in &coalition.goals {
            let title = if goal.parent.is_some() {
                format!("  {}", goal.title)
            } else {
                goal.title.clone()
            };
            goals.row(vec![
                title,
                goal.id.clone(),
                format!("{} {}", goal.target, goal.unit),
                format!("{} ({})", goal.pledged, bps(goal.pledged_bps)),
                format!("{} ({})", goal.fulfilled, bps(goal.fulfilled_bps)),
                output::time(goal.deadline),
            ]);
        }
        text.push_str(&goals.render("No goals."));
        text.push('\n');
        text.push_str(&pledges_table(&coalition.pledges));
        if !coalition.pooled_datasets.is_empty() {
            text.push_str(&format!(
                "\nPooled datasets: {}\n",
                coalition.pooled_datasets.join(", ")
            ));
        }
        for publication in &coalition.publications {
            text.push_str(&format!(
                "\nPublished: {} ({} withheld by the pooled rules)\n",
                publication.title, publication.rows_suppressed
            ));
            let headers: Vec<&str> = publication.columns.iter().map(String::as_str).collect();
            let mut table = Table::new(&headers);
            for row in &publication.rows {
                table.row(
                    row.as_array()
                        .map(|cells| cells.iter().map(cell).collect())
                        .unwrap_or_default(),
                );
            }
            text.push_str(&table.render("No rows."));
        }
    }
    text
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn pledges_table(pledges: &[Pledge]) -> String {
    let mut table = Table::new(&[
        "pledge",
        "member",
        "goal",
        "quantity",
        "fulfilled",
        "due",
        "state",
    ]);
    for pledge in pledges {
        let mut state = if pledge.active {
            "active".to_owned()
        } else {
            "waiting on its condition".to_owned()
        };
        if pledge.overdue {
            state.push_str(", overdue");
        }
        if let Some(condition) = &pledge.condition {
            state.push_str(&format!(" (if {condition})"));
        }
        table.row(vec![
            pledge.id.clone(),
            pledge.member_name.clone(),
            pledge.goal_id.clone(),
            pledge.quantity.to_string(),
            pledge.fulfilled.to_string(),
            output::time(pledge.due),
            state,
        ]);
    }
    table.render("No pledges.")
}

fn proposals_table(proposals: &[Proposal]) -> String {
    let mut table = Table::new(&[
        "#", "id", "title", "topic", "status", "yes", "no", "abstain", "of", "closes",
    ]);
    for proposal in proposals {
        table.row(vec![
            proposal.number.to_string(),
            proposal.id.clone(),
            proposal.title.clone(),
            proposal.topic.clone(),
            proposal.status.clone(),
            proposal.tally.yes.to_string(),
            proposal.tally.no.to_string(),
            proposal.tally.abstain.to_string(),
            proposal.tally.total_power.to_string(),
            output::time(proposal.closes_at),
        ]);
    }
    table.render("No proposals.")
}

fn proposal_text(proposals: &[Proposal]) -> String {
    let mut text = String::new();
    for proposal in proposals {
        let tally = &proposal.tally;
        text.push_str(&format!(
            "#{} {} ({})\nstatus: {}, closes {}\nneeds: {}\ntally: {} yes, {} no, {} abstain, {} block of {} (support {}, quorum {})\nactions:\n",
            proposal.number,
            proposal.title,
            proposal.id,
            proposal.status,
            output::time(proposal.closes_at),
            proposal.requirement,
            tally.yes,
            tally.no,
            tally.abstain,
            tally.block,
            tally.total_power,
            if tally.support_reached { "reached" } else { "not reached" },
            if tally.quorum_reached { "reached" } else { "not reached" },
        ));
        for action in &proposal.actions {
            text.push_str(&format!("  {action}\n"));
        }
        let mut votes = Table::new(&["voter", "choice", "weight", "through"]);
        for vote in &tally.votes {
            votes.row(vec![
                vote.voter.clone(),
                vote.choice.clone(),
                vote.weight.to_string(),
                vote.via.join(" → "),
            ]);
        }
        text.push_str(&votes.render("No votes yet."));
        for execution in &proposal.executions {
            text.push_str(&format!(
                "ran {}: {} ({})\n",
                execution.action,
                if execution.succeeded {
                    "done"
                } else {
                    "FAILED"
                },
                execution.detail
            ));
        }
    }
    text
}

pub async fn coalition(command: CoalitionCommand) -> Result<(), Failure> {
    match command {
        CoalitionCommand::Found {
            name,
            purpose,
            charter,
            query_purposes,
            goals,
            client,
        } => {
            let charter = match charter {
                None => Value::Null,
                Some(file) => {
                    let text = std::fs::read_to_string(&file).map_err(|error| {
                        usage(format!("cannot read {}: {error}", file.display()))
                    })?;
                    serde_json::from_str(&text).map_err(|error| {
                        usage(format!("{} is not JSON: {error}", file.display()))
                    })?
                }
            };
            let mut goal_values = Vec::new();
            for goal in &goals {
                let parts: Vec<&str> = goal.split('|').collect();
                let [title, target, unit, deadline] = parts.as_slice() else {
                    return Err(usage(format!(
                        "--goal `{goal}` is not TITLE|TARGET|UNIT|DEADLINE"
                    )));
                };
                let target: i64 = target
                    .trim()
                    .parse()
                    .map_err(|_| usage(format!("the target in --goal `{goal}` is not a number")))?;
                goal_values.push(json!({
                    "title": title.trim(), "metric": title.trim(), "unit": unit.trim(),
                    "target": target, "deadline": instant(deadline.trim(), "goal")?,
                }));
            }
            let api = connect(&client.connect)?;
            let answer = api
                .post(
                    "/api/v1/coalitions",
                    Some(&json!({
                        "name": name, "purpose": purpose, "charter": charter,
                        "query_purposes": query_purposes, "goals": goal_values,
                    })),
                    None,
                )
                .await?;
            print_one(client.format, &answer, coalition_text)
        }
        CoalitionCommand::List { client } => {
            let api = connect(&client.connect)?;
            let answer: Value = api.get("/api/v1/coalitions", &[]).await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let list: Vec<Summary> = super::typed(&answer)?;
                    let mut table = Table::new(&["id", "name", "members", "purpose"]);
                    for one in list {
                        table.row(vec![one.id, one.name, one.members.to_string(), one.purpose]);
                    }
                    output::print(&table.render("No coalitions."))
                }
            }
        }
        CoalitionCommand::Show { coalition, client } => {
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer: Value = api.get(&format!("/api/v1/coalitions/{id}"), &[]).await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let proposals: Value = api
                        .get(&format!("/api/v1/coalitions/{id}/proposals"), &[])
                        .await?;
                    let proposals: Vec<Proposal> = super::typed(&proposals)?;
                    let mut text = coalition_text(&[super::typed(&answer)?]);
                    text.push('\n');
                    text.push_str(&proposals_table(&proposals));
                    output::print(&text)
                }
            }
        }
        CoalitionCommand::Goal {
            coalition,
            title,
            metric,
            unit,
            target,
            deadline,
            parent,
            weight,
            client,
        } => {
            let deadline = instant(&deadline, "deadline")?;
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer = api
                .post(
                    &format!("/api/v1/coalitions/{id}/goals"),
                    Some(&json!({
                        "title": title, "metric": metric.unwrap_or_else(|| title.clone()),
                        "unit": unit, "target": target, "deadline": deadline,
                        "parent": parent, "weight": weight,
                    })),
                    None,
                )
                .await?;
            created(client.format, &answer, "goal")
        }
        CoalitionCommand::Delegate {
            coalition,
            to,
            topic,
            client,
        } => {
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let to = match &to {
                Some(to) => Some(resolve_org(&api, to).await?),
                None => None,
            };
            api.send(
                api.request_to(
                    reqwest::Method::PUT,
                    &format!("/api/v1/coalitions/{id}/delegation"),
                )
                .json(&json!({ "to": to, "topic": topic })),
            )
            .await?;
            output::print(&match (to, topic) {
                (Some(to), Some(topic)) => format!("{to} now votes for you on `{topic}`."),
                (Some(to), None) => format!("{to} now votes for you on every topic."),
                (None, Some(topic)) => format!("You vote yourself on `{topic}` again."),
                (None, None) => "You vote yourself on every topic again.".to_owned(),
            })
        }
        CoalitionCommand::Contribute {
            coalition,
            dataset,
            file,
            file_format,
            quiet,
            client,
        } => {
            let format = format_of(&file, file_format)?;
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer = upload_to(
                &api,
                &format!("/api/v1/coalitions/{id}/datasets/{dataset}/contributions"),
                &file,
                format,
                quiet,
            )
            .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!(
                    "Contributed {} rows to {dataset}: version {}.",
                    answer["version"]["rows_added"], answer["version"]["version"]
                )),
            }
        }
        CoalitionCommand::Classify {
            coalition,
            dataset,
            classes,
            client,
        } => {
            let mut columns = Vec::with_capacity(classes.len());
            for pair in &classes {
                let Some((column, class)) = pair.split_once('=') else {
                    return Err(usage(format!("`{pair}` is not COLUMN=CLASS")));
                };
                columns.push(json!({ "column": column, "class": class }));
            }
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer = api
                .put(
                    &format!("/api/v1/coalitions/{id}/datasets/{dataset}/classes"),
                    &json!({ "columns": columns }),
                )
                .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!("Classed the columns of {dataset}.")),
            }
        }
        CoalitionCommand::Fund {
            coalition,
            amount,
            currency,
            reference,
            client,
        } => {
            let parsed = Currency::parse(&currency)?;
            let minor = super::market::parse_amount(&amount, parsed, "amount")?;
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer = api
                .post(
                    &format!("/api/v1/coalitions/{id}/treasury"),
                    Some(&json!({ "amount": minor, "currency": currency, "reference": reference })),
                    None,
                )
                .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!(
                    "The treasury holds {} {currency} (minor units).",
                    answer["balance"]
                )),
            }
        }
        CoalitionCommand::Register { coalition, client } => {
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer: Value = api
                .get(&format!("/api/v1/coalitions/{id}/register"), &[])
                .await?;
            output::print_json(&answer)
        }
    }
}

fn created(format: Format, answer: &Value, what: &str) -> Result<(), Failure> {
    match format {
        Format::Json => output::print_json(answer),
        Format::Table => output::print(&format!(
            "Created {what} {}.",
            answer["id"].as_str().unwrap_or_default()
        )),
    }
}

pub async fn pledge(command: PledgeCommand) -> Result<(), Failure> {
    match command {
        PledgeCommand::Create {
            coalition,
            goal,
            quantity,
            due,
            if_others,
            if_total,
            note,
            client,
        } => {
            let condition = match (if_others, if_total) {
                (Some(count), _) => json!({ "others_at_least": { "count": count } }),
                (None, Some(quantity)) => json!({ "total_at_least": { "quantity": quantity } }),
                (None, None) => Value::Null,
            };
            let due = instant(&due, "due")?;
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer = api
                .post(
                    &format!("/api/v1/coalitions/{id}/pledges"),
                    Some(&json!({
                        "goal_id": goal, "quantity": quantity, "due": due,
                        "condition": condition, "note": note,
                    })),
                    None,
                )
                .await?;
            created(client.format, &answer, "pledge")
        }
        PledgeCommand::List { coalition, client } => {
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer: Value = api.get(&format!("/api/v1/coalitions/{id}"), &[]).await?;
            match client.format {
                Format::Json => output::print_json(&answer["pledges"]),
                Format::Table => {
                    let pledges: Vec<Pledge> = super::typed(&answer["pledges"])?;
                    output::print(&pledges_table(&pledges))
                }
            }
        }
        PledgeCommand::Fulfil {
            coalition,
            pledge,
            quantity,
            note,
            client,
        } => {
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            api.send(
                api.request_to(
                    reqwest::Method::POST,
                    &format!("/api/v1/coalitions/{id}/pledges/{pledge}/fulfilments"),
                )
                .json(&json!({ "quantity": quantity, "note": note })),
            )
            .await?;
            match client.format {
                Format::Json => {
                    output::print_json(&json!({ "pledge_id": pledge, "quantity": quantity }))
                }
                Format::Table => output::print(&format!("Reported {quantity} against {pledge}.")),
            }
        }
    }
}

pub async fn proposal(command: ProposalCommand) -> Result<(), Failure> {
    match command {
        ProposalCommand::Create {
            coalition,
            title,
            body,
            topic,
            actions,
            voting_hours,
            client,
        } => {
            let mut parsed = Vec::with_capacity(actions.len());
            for action in &actions {
                parsed.push(
                    serde_json::from_str::<Value>(action).map_err(|error| {
                        usage(format!("--action `{action}` is not JSON: {error}"))
                    })?,
                );
            }
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer = api
                .post(
                    &format!("/api/v1/coalitions/{id}/proposals"),
                    Some(&json!({
                        "title": title, "body": body, "topic": topic, "actions": parsed,
                        "voting_seconds": voting_hours.map(|hours| hours * 3600),
                    })),
                    None,
                )
                .await?;
            print_one(client.format, &answer, proposal_text)
        }
        ProposalCommand::List { coalition, client } => {
            let api = connect(&client.connect)?;
            let id = resolve_org(&api, &coalition).await?;
            let answer: Value = api
                .get(&format!("/api/v1/coalitions/{id}/proposals"), &[])
                .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let proposals: Vec<Proposal> = super::typed(&answer)?;
                    output::print(&proposals_table(&proposals))
                }
            }
        }
        ProposalCommand::Show { proposal, client } => {
            let api = connect(&client.connect)?;
            let answer: Value = api
                .get(&format!("/api/v1/proposals/{proposal}"), &[])
                .await?;
            print_one(client.format, &answer, proposal_text)
        }
        ProposalCommand::Execute { proposal, client } => {
            let api = connect(&client.connect)?;
            let answer = api
                .post(&format!("/api/v1/proposals/{proposal}/execute"), None, None)
                .await?;
            print_one(client.format, &answer, proposal_text)
        }
    }
}

pub async fn vote(command: VoteCommand) -> Result<(), Failure> {
    let api = connect(&command.client.connect)?;
    let answer = api
        .post(
            &format!("/api/v1/proposals/{}/votes", command.proposal),
            Some(&json!({ "choice": command.choice, "reason": command.reason })),
            None,
        )
        .await?;
    print_one(command.client.format, &answer, proposal_text)
}
