//! The demo's coalition: eight manufacturers scale up mask production. They found the Mask
//! Makers Alliance with a goal split into two sub-goals, pledge capacity (one pledge only if
//! three others pledge), report deliveries, pool twelve weeks of capacity data, admit a ninth
//! member by a proposal that passes and runs, publish weekly pooled capacity statistics by a
//! second proposal, and leave a third open so the portal shows a live tally.

use std::fmt::Write as _;

use agora_app::ProposalAction;
use agora_app::agora_coalition::{Choice, Condition};
use agora_app::{App, Call, CreateOrg, NewCoalition, NewGoal, NewMember, NewPledge, NewProposal};
use agora_domain::dataset::{ColumnClass, ColumnClassing, UploadFormat};
use agora_domain::{Actor, Email, OrgName, Password, PersonName, RequestId, Role, Timestamp};
use serde_json::json;

use crate::Failure;
use crate::demo::DEMO_PASSWORD;
use crate::demo_commons::{org_named, owner_of};

/// The manufacturers and their owners; the first founds the alliance, the last is admitted later.
pub const COALITION_ACCOUNTS: &[(&str, &str, &str)] = &[
    ("Maskworks", "mia@maskworks.example", "Mia Okafor"),
    ("Filtra Medical", "finn@filtra.example", "Finn Berg"),
    ("Cotton & Co", "cora@cottonco.example", "Cora Diaz"),
    ("Elastic Bands Ltd", "eli@elasticbands.example", "Eli Park"),
    ("Nonwoven AG", "nina@nonwoven.example", "Nina Vogel"),
    ("Sterile Pack", "stan@sterilepack.example", "Stan Ito"),
    ("Meltblown Inc", "mel@meltblown.example", "Mel Grant"),
    ("Ear Loop Works", "ed@earloop.example", "Ed Quinn"),
    (
        "ClearShield Visors",
        "cleo@clearshield.example",
        "Cleo Shah",
    ),
];

/// The alliance's name.
pub const COALITION: &str = "Mask Makers Alliance";
const DAY_US: i64 = 24 * 3600 * 1_000_000;

fn at(now: Timestamp, days: i64) -> Timestamp {
    Timestamp::from_micros(now.as_micros() + days * DAY_US)
}

/// Twelve weeks of a member's capacity, 100 to 177 days old (older than the 90-day rule):
/// masks a week by product line.
pub fn capacity_csv(now: Timestamp, member: usize) -> String {
    let mut csv = String::from("week_start,line,masks\n");
    for week in 0..12 {
        let day = at(now, -(100 + 7 * week));
        let date = &day.to_rfc3339()[..10];
        // Capacity grows week on week; members differ in size, none dominating.
        let base = 20_000 + member as i64 * 3_000 + (11 - week) * 1_500;
        writeln!(csv, "{date},surgical,{base}").expect("writing to a string");
        writeln!(csv, "{date},ffp2,{}", base / 3).expect("writing to a string");
    }
    csv
}

/// Seeds the coalition; returns the story's lines for the banner.
pub async fn seed(app: &App) -> Result<String, Failure> {
    let system = Actor::system();
    let call = Call::new(&system, RequestId::new());
    for (org, email, name) in COALITION_ACCOUNTS {
        let created = app
            .create_org(
                &call,
                CreateOrg {
                    name: OrgName::parse(org)?,
                },
            )
            .await?;
        app.add_member(
            &call,
            created.id,
            NewMember {
                email: Email::parse(email)?,
                role: Role::Owner,
                display_name: Some(PersonName::parse(name)?),
                password: Some(Password::parse(DEMO_PASSWORD)?),
            },
        )
        .await?;
    }
    let mut owners = Vec::new();
    for (org, email, _) in COALITION_ACCOUNTS {
        owners.push(owner_of(app, org, email).await?);
    }
    let calls: Vec<Call<'_>> = owners
        .iter()
        .map(|owner| Call::new(owner, RequestId::new()))
        .collect();
    let now = Timestamp::now();

    // Votes are final once cast, so a proposal closes as soon as its outcome is certain.
    let founded = app
        .found_coalition(
            &calls[0],
            NewCoalition {
                name: COALITION.into(),
                purpose: "Scale up mask production to a million masks a week within six months, sharing capacity data without sharing prices.".into(),
                charter: Some(json!({ "votes_changeable": false, "early_close": true, "quorum_bps": 5000 })),
                query_purposes: vec!["capacity-planning".into()],
                goals: vec![NewGoal {
                    title: "A million masks a week".into(),
                    metric: "masks produced per week".into(),
                    unit: "masks/week".into(),
                    target: 1_000_000,
                    deadline: at(now, 180),
                    parent: None,
                    weight: 0,
                }],
            },
        )
        .await?;
    let coalition = founded.id;
    let goal = founded.goals[0].id;
    let surgical = app
        .add_goal(
            &calls[0],
            coalition,
            NewGoal {
                title: "Surgical masks".into(),
                metric: "surgical masks per week".into(),
                unit: "masks/week".into(),
                target: 700_000,
                deadline: at(now, 180),
                parent: Some(goal),
                weight: 70,
            },
        )
        .await?;
    let ffp2 = app
        .add_goal(
            &calls[0],
            coalition,
            NewGoal {
                title: "FFP2 respirators".into(),
                metric: "FFP2 respirators per week".into(),
                unit: "masks/week".into(),
                target: 300_000,
                deadline: at(now, 180),
                parent: Some(goal),
                weight: 30,
            },
        )
        .await?;

    // The founder alone admits the seven other founding partners.
    let members: Vec<_> = {
        let mut ids = Vec::new();
        for (org, _, _) in &COALITION_ACCOUNTS[1..8] {
            ids.push(org_named(app, org).await?);
        }
        ids
    };
    let founding = app
        .propose(
            &calls[0],
            coalition,
            NewProposal {
                title: "Admit the seven founding partners".into(),
                body: "Filtra, Cotton & Co, Elastic Bands, Nonwoven, Sterile Pack, Meltblown and Ear Loop Works signed the letter of intent.".into(),
                topic: Some("membership".into()),
                actions: members
                    .iter()
                    .map(|org_id| ProposalAction::AdmitMember {
                        org_id: *org_id,
                        steward: false,
                        stake: 0,
                    })
                    .collect(),
                voting_seconds: None,
            },
        )
        .await?;
    app.vote(&calls[0], founding.id, Choice::Yes, "founding")
        .await?;
    app.execute_proposal(&calls[0], founding.id).await?;

    // Pledges towards the two sub-goals; Meltblown pledges only if three others pledge FFP2.
    let pledges: [(usize, agora_domain::GoalId, i64, Option<Condition>); 9] = [
        (0, surgical, 150_000, None),
        (1, ffp2, 60_000, None),
        (2, surgical, 120_000, None),
        (3, surgical, 90_000, None),
        (4, ffp2, 50_000, None),
        (5, surgical, 80_000, None),
        (6, ffp2, 70_000, Some(Condition::OthersAtLeast { count: 3 })),
        (7, surgical, 60_000, None),
        (0, ffp2, 40_000, None),
    ];
    let mut pledge_ids = Vec::new();
    for (member, goal_id, quantity, condition) in pledges {
        let id = app
            .pledge(
                &calls[member],
                coalition,
                NewPledge {
                    goal_id,
                    quantity,
                    due: at(now, 60 + 10 * member as i64),
                    condition,
                    note: String::new(),
                },
            )
            .await?;
        pledge_ids.push((member, id, quantity));
    }
    for (member, id, quantity) in pledge_ids.iter().take(5) {
        app.report_fulfilment(
            &calls[*member],
            coalition,
            *id,
            quantity / 2,
            "first weeks of production",
        )
        .await?;
    }

    // Twelve weeks of capacity from each member, pooled; the platform sets the contributor.
    for (member, call) in calls.iter().enumerate().take(8) {
        let csv = capacity_csv(now, member);
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(csv.into_bytes())]);
        app.contribute(call, coalition, "weekly_capacity", UploadFormat::Csv, body)
            .await?;
    }
    app.classify_pooled(
        &calls[0],
        coalition,
        "weekly_capacity",
        vec![
            ColumnClassing {
                column: "week_start".into(),
                class: ColumnClass::Timestamp,
            },
            ColumnClassing {
                column: "line".into(),
                class: ColumnClass::Dimension,
            },
            ColumnClassing {
                column: "masks".into(),
                class: ColumnClass::Metric,
            },
        ],
    )
    .await?;

    // Ear Loop Works lets Filtra vote for it on data questions.
    app.delegate(&calls[7], coalition, Some("data"), Some(members[0]))
        .await?;

    // A ninth member: it passes as soon as the members yet to vote could no longer overturn
    // it (four yes, one no, one abstention of eight), and its action runs.
    let ninth = org_named(app, COALITION_ACCOUNTS[8].0).await?;
    let admit = app
        .propose(
            &calls[1],
            coalition,
            NewProposal {
                title: "Admit ClearShield Visors".into(),
                body:
                    "ClearShield makes face shields and can convert a line to FFP2 within a month."
                        .into(),
                topic: Some("membership".into()),
                actions: vec![ProposalAction::AdmitMember {
                    org_id: ninth,
                    steward: false,
                    stake: 0,
                }],
                voting_seconds: None,
            },
        )
        .await?;
    let ballots = [
        (0, Choice::Yes, "more FFP2 capacity"),
        (1, Choice::Yes, "we proposed it"),
        (2, Choice::No, "they compete with our visors"),
        (3, Choice::Abstain, ""),
        (4, Choice::Yes, ""),
        (5, Choice::Yes, ""),
        (6, Choice::Yes, ""),
    ];
    let mut admitted = admit.clone();
    for (member, choice, reason) in ballots {
        if admitted.status != "open" {
            break;
        }
        admitted = app.vote(&calls[member], admit.id, choice, reason).await?;
    }
    let admitted = app.execute_proposal(&calls[1], admit.id).await?;

    // Weekly pooled capacity statistics, published by proposal.
    let sql = "SELECT week_start, line, SUM(masks) AS masks, COUNT(*) AS reports FROM weekly_capacity GROUP BY week_start, line ORDER BY week_start, line";
    let publish = app
        .propose(
            &calls[0],
            coalition,
            NewProposal {
                title: "Publish weekly pooled capacity".into(),
                body: "Total capacity per week and product line, held to the charter's pooled rules (5 contributors, no one above 25%, 90 days old).".into(),
                topic: Some("data".into()),
                actions: vec![ProposalAction::PublishStatistics {
                    title: "Weekly capacity by product line".into(),
                    purpose: "capacity-planning".into(),
                    sql: sql.into(),
                }],
                voting_seconds: None,
            },
        )
        .await?;
    let mut published = publish.clone();
    for member in [0usize, 1, 2, 3, 4, 5] {
        if published.status != "open" {
            break;
        }
        published = app
            .vote(&calls[member], publish.id, Choice::Yes, "")
            .await?;
    }
    let published = app.execute_proposal(&calls[0], publish.id).await?;

    // One left open, for the portal's live tally.
    let open = app
        .propose(
            &calls[2],
            coalition,
            NewProposal {
                title: "Let members change their vote until the close".into(),
                body: "Loomio's default: only the latest vote counts.".into(),
                topic: Some("governance".into()),
                actions: vec![ProposalAction::AmendCharter {
                    charter: json!({ "votes_changeable": true, "quorum_bps": 5000 }),
                }],
                voting_seconds: None,
            },
        )
        .await?;
    app.vote(&calls[2], open.id, Choice::Yes, "fairer").await?;
    app.vote(&calls[5], open.id, Choice::No, "").await?;

    let view = app.coalition(&calls[0], coalition).await?;
    let mut story = String::new();
    writeln!(story, "\nCoalition:").ok();
    writeln!(
        story,
        "  {COALITION}: {} members, goal {} masks/week; pledged {} ({:.1}%), fulfilled {}.",
        view.members.len(),
        view.goals[0].target,
        view.goals[0].pledged,
        f64::from(view.goals[0].pledged_bps) / 100.0,
        view.goals[0].fulfilled
    )
    .ok();
    writeln!(
        story,
        "  Proposal #{} `{}`: {} yes, {} no, {} abstain of {} → {}; {}.",
        admitted.number,
        admitted.title,
        admitted.tally.yes,
        admitted.tally.no,
        admitted.tally.abstain,
        admitted.tally.total_power,
        admitted.status,
        admitted
            .executions
            .first()
            .map(|e| e.detail.clone())
            .unwrap_or_default()
    )
    .ok();
    writeln!(
        story,
        "  Proposal #{} `{}` → {}; {}.",
        published.number,
        published.title,
        published.status,
        published
            .executions
            .first()
            .map(|e| e.detail.clone())
            .unwrap_or_default()
    )
    .ok();
    writeln!(
        story,
        "  Proposal #{} `{}` is open. Sign in as mia@maskworks.example and open /coalitions.",
        open.number, open.title
    )
    .ok();
    Ok(story)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_old_enough_and_the_same_every_time() {
        let now = Timestamp::from_micros(1_790_000_000_000_000);
        let csv = capacity_csv(now, 3);
        assert_eq!(csv.lines().count(), 1 + 24);
        assert_eq!(csv, capacity_csv(now, 3));
    }
}
