//! Coalitions through the API on each backend: founding under a checked charter, admitting
//! members by proposals whose actions run, pledges (a conditional one) and their fulfilment, a
//! refused vote for each refusal rule, delegation, pooled data whose contributor the platform
//! sets and whose dominated statistic is withheld, published statistics, the treasury, and the
//! Popolo register agreeing with the tallies.

use std::fmt::Write as _;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApi, backends};

/// A charter whose votes are final once cast, so that a proposal closes as soon as its outcome
/// cannot change (a test cannot wait for a voting period).
fn charter() -> Value {
    json!({ "votes_changeable": false, "early_close": true, "quorum_bps": 5000 })
}

impl TestApi {
    async fn propose(&self, coalition: &str, token: &str, body: Value) -> Value {
        let (status, proposal) = self
            .post(
                &format!("/api/v1/coalitions/{coalition}/proposals"),
                token,
                body,
            )
            .await;
        assert_eq!(status, 201, "{proposal}");
        proposal
    }

    async fn vote(&self, proposal: &str, token: &str, choice: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/proposals/{proposal}/votes"),
            token,
            json!({ "choice": choice }),
        )
        .await
    }

    async fn contribute(&self, coalition: &str, token: &str, csv: String) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!(
                "{}/api/v1/coalitions/{coalition}/datasets/capacity/contributions",
                self.url
            ))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

/// A member's weekly capacity: `masks` per week in each region, for four old weeks.
fn capacity_csv(masks: i64) -> String {
    let mut csv = String::from("region,week,masks,day\n");
    for (week, day) in [
        ("2026-W02", "2026-01-05"),
        ("2026-W03", "2026-01-12"),
        ("2026-W04", "2026-01-19"),
        ("2026-W05", "2026-01-26"),
    ] {
        for region in ["north", "south"] {
            writeln!(csv, "{region},{week},{masks},{day}").unwrap();
        }
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalition_pledges_decides_acts_pools_and_keeps_a_register() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let mut orgs = Vec::new();
        let mut owners = Vec::new();
        for (index, name) in [
            "Maskworks",
            "Filtra",
            "Cotton Co",
            "Elastic Ltd",
            "Pack & Ship",
            "Nonwoven AG",
        ]
        .iter()
        .enumerate()
        {
            let org = api.partner(name).await;
            owners.push(
                api.member_token(&org, &format!("owner{index}@m.example"), "owner")
                    .await,
            );
            orgs.push(org);
        }
        let late = api.partner("Latecomer").await;
        let late_owner = api.member_token(&late, "late@l.example", "owner").await;
        let outsider = api.partner("Outsider").await;
        let outsider_owner = api.member_token(&outsider, "out@o.example", "owner").await;
        let analyst = api
            .member_token(&orgs[1], "analyst@filtra.example", "analyst")
            .await;

        // An unsafe charter is refused, naming the field.
        let (status, problem) = api
            .post(
                "/api/v1/coalitions",
                &owners[0],
                json!({ "name": "Unsafe", "purpose": "x", "charter": { "amendment_support_threshold_bps": 4000 } }),
            )
            .await;
        assert_eq!(status, 400, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("amendment_support_threshold_bps"),
            "{problem}"
        );

        let (status, founded) = api
            .post(
                "/api/v1/coalitions",
                &owners[0],
                json!({
                    "name": "Mask Makers",
                    "purpose": "Scale up mask production",
                    "charter": charter(),
                    "query_purposes": ["capacity-planning"],
                    "goals": [{ "title": "Masks a week", "metric": "masks produced per week", "unit": "masks", "target": 1_000_000, "deadline": "2099-01-01T00:00:00Z" }],
                }),
            )
            .await;
        assert_eq!(status, 201, "{founded}");
        let coalition = founded["id"].as_str().unwrap().to_owned();
        let goal = founded["goals"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(founded["members"][0]["org_id"], orgs[0].as_str());
        assert_eq!(founded["members"][0]["role"], "steward");

        // The founder alone admits Filtra: the outcome is certain at once and the action runs.
        let admit = api
            .propose(
                &coalition,
                &owners[0],
                json!({ "title": "Admit Filtra", "topic": "membership",
                        "actions": [{ "type": "admit_member", "org_id": orgs[1] }] }),
            )
            .await;
        let admit_id = admit["id"].as_str().unwrap().to_owned();
        let (status, voted) = api.vote(&admit_id, &owners[0], "yes").await;
        assert_eq!(status, 200, "{voted}");
        assert_eq!(voted["status"], "passed", "{voted}");
        let (status, executed) = api
            .post(
                &format!("/api/v1/proposals/{admit_id}/execute"),
                &owners[0],
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{executed}");
        assert_eq!(executed["status"], "executed");
        assert_eq!(executed["executions"][0]["succeeded"], true, "{executed}");

        // A vote after the close is refused.
        let (status, problem) = api.vote(&admit_id, &owners[1], "no").await;
        assert_eq!(status, 409, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("closed"));

        // The two admit the other four in one proposal; a latecomer opened after cannot vote.
        let admit_four = api
            .propose(
                &coalition,
                &owners[1],
                json!({ "title": "Admit four manufacturers", "topic": "membership",
                        "actions": orgs[2..].iter().map(|org| json!({ "type": "admit_member", "org_id": org })).collect::<Vec<_>>() }),
            )
            .await;
        let four_id = admit_four["id"].as_str().unwrap().to_owned();
        let (status, voted) = api.vote(&four_id, &owners[0], "yes").await;
        assert_eq!(status, 200, "{voted}");
        assert_eq!(
            voted["status"], "open",
            "one yes of two may still be outvoted"
        );
        // Votes are final under this charter: a second ballot is refused.
        let (status, problem) = api.vote(&four_id, &owners[0], "no").await;
        assert_eq!(status, 409, "{problem}");
        let (status, voted) = api.vote(&four_id, &owners[1], "yes").await;
        assert_eq!(status, 200, "{voted}");
        assert_eq!(voted["status"], "passed");
        let (status, executed) = api
            .post(
                &format!("/api/v1/proposals/{four_id}/execute"),
                &owners[1],
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{executed}");
        let (_, view) = api
            .get(&format!("/api/v1/coalitions/{coalition}"), &outsider_owner)
            .await;
        assert_eq!(view["members"].as_array().unwrap().len(), 6, "{view}");

        // A vote from a non-member is refused by the authorizer.
        let open = api
            .propose(
                &coalition,
                &owners[2],
                json!({ "title": "Admit the latecomer", "topic": "membership",
                        "actions": [{ "type": "admit_member", "org_id": late }] }),
            )
            .await;
        let open_id = open["id"].as_str().unwrap().to_owned();
        let (status, problem) = api.vote(&open_id, &outsider_owner, "yes").await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(
            problem["rule"], "coalition-decisions-stay-with-the-members",
            "{problem}"
        );
        // A block the charter does not allow is refused.
        let (status, problem) = api.vote(&open_id, &owners[3], "block").await;
        assert_eq!(status, 400, "{problem}");

        // Delegation: a cycle is refused; a topic delegation carries weight with its path.
        let (status, _) = api
            .call(
                Method::PUT,
                &format!("/api/v1/coalitions/{coalition}/delegation"),
                &owners[4],
                Some(json!({ "to": orgs[5] })),
            )
            .await;
        assert_eq!(status, 204);
        let (status, problem) = api
            .call(
                Method::PUT,
                &format!("/api/v1/coalitions/{coalition}/delegation"),
                &owners[5],
                Some(json!({ "to": orgs[4], "topic": "membership" })),
            )
            .await;
        assert_eq!(status, 400, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("cycle"),
            "{problem}"
        );
        let (status, voted) = api.vote(&open_id, &owners[5], "yes").await;
        assert_eq!(status, 200, "{voted}");
        let delegated = voted["tally"]["votes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|vote| vote["voter"] == orgs[4].as_str())
            .cloned()
            .expect("the delegator's weight is counted");
        assert_eq!(delegated["choice"], "yes");
        assert_eq!(delegated["via"], json!([orgs[5]]));
        assert_eq!(voted["tally"]["yes"], 2);
        // A proposal opened now has the six members as its electorate.
        let frozen = api
            .propose(
                &coalition,
                &owners[0],
                json!({ "title": "Remove Nonwoven AG", "actions": [{ "type": "remove_member", "org_id": orgs[5] }] }),
            )
            .await;
        assert_eq!(frozen["electorate_size"], 6);
        let frozen_id = frozen["id"].as_str().unwrap().to_owned();
        // Three more yes votes: five of six, four of them cast directly. A delegated vote is not
        // final (the delegator may still vote itself), so it passes only once even the two
        // organisations that could still move could not overturn it.
        for owner in &owners[0..3] {
            let (status, voted) = api.vote(&open_id, owner, "yes").await;
            assert_eq!(status, 200, "{voted}");
        }
        let (_, passed) = api
            .get(&format!("/api/v1/proposals/{open_id}"), &owners[0])
            .await;
        assert_eq!(passed["status"], "passed", "{passed}");
        let (status, _) = api
            .post(
                &format!("/api/v1/proposals/{open_id}/execute"),
                &owners[0],
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
        // The latecomer is a member now, but not of the electorate frozen before it joined.
        let (status, problem) = api.vote(&frozen_id, &late_owner, "no").await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["rule"], "electorate-frozen-at-opening", "{problem}");
        let later = api
            .propose(
                &coalition,
                &late_owner,
                json!({ "title": "Anything", "actions": [{ "type": "remove_member", "org_id": orgs[5] }] }),
            )
            .await;
        assert_eq!(later["electorate_size"], 7);

        // Pledges: an unconditional one, a conditional one that activates, fulfilment.
        let (status, pledge) = api
            .post(
                &format!("/api/v1/coalitions/{coalition}/pledges"),
                &owners[1],
                json!({ "goal_id": goal, "quantity": 200_000, "due": "2098-01-01T00:00:00Z" }),
            )
            .await;
        assert_eq!(status, 201, "{pledge}");
        let pledge_id = pledge["id"].as_str().unwrap().to_owned();
        let (status, conditional) = api
            .post(
                &format!("/api/v1/coalitions/{coalition}/pledges"),
                &owners[2],
                json!({ "goal_id": goal, "quantity": 100_000, "due": "2098-01-01T00:00:00Z",
                        "condition": { "others_at_least": { "count": 1 } } }),
            )
            .await;
        assert_eq!(status, 201, "{conditional}");
        let (status, never) = api
            .post(
                &format!("/api/v1/coalitions/{coalition}/pledges"),
                &owners[3],
                json!({ "goal_id": goal, "quantity": 50_000, "due": "2098-01-01T00:00:00Z",
                        "condition": { "total_at_least": { "quantity": 900_000 } } }),
            )
            .await;
        assert_eq!(status, 201, "{never}");
        let (status, _) = api
            .post(
                &format!("/api/v1/coalitions/{coalition}/pledges/{pledge_id}/fulfilments"),
                &owners[1],
                json!({ "quantity": 50_000, "note": "first week" }),
            )
            .await;
        assert_eq!(status, 204);
        // Only the pledging member reports on its pledge.
        let (status, _) = api
            .post(
                &format!("/api/v1/coalitions/{coalition}/pledges/{pledge_id}/fulfilments"),
                &owners[2],
                json!({ "quantity": 1 }),
            )
            .await;
        assert_eq!(status, 403);
        let (_, view) = api
            .get(&format!("/api/v1/coalitions/{coalition}"), &owners[0])
            .await;
        let goal_view = &view["goals"][0];
        assert_eq!(goal_view["pledged"], 300_000, "{goal_view}");
        assert_eq!(goal_view["fulfilled"], 50_000);
        assert_eq!(goal_view["pledged_bps"], 3_000);
        assert!(goal_view["history"].as_array().unwrap().len() >= 3);
        let active: Vec<bool> = view["pledges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["active"].as_bool().unwrap())
            .collect();
        assert_eq!(active, [true, true, false]);

        // Pooled data: the platform sets the contributor; a file naming one is refused.
        let (status, problem) = api
            .contribute(
                &coalition,
                &owners[0],
                "region,contributor,masks\nnorth,someone-else,5\n".into(),
            )
            .await;
        assert_eq!(status, 400, "{problem}");
        // Filtra dominates the north: 1,000,000 against 10,000 from each of the others.
        for (index, owner) in owners.iter().enumerate() {
            let masks = if index == 1 { 1_000_000 } else { 10_000 };
            let token = if index == 1 { &analyst } else { owner };
            let (status, outcome) = api.contribute(&coalition, token, capacity_csv(masks)).await;
            assert!(status.is_success(), "{outcome}");
        }
        let (status, classified) = api
            .call(
                Method::PUT,
                &format!("/api/v1/coalitions/{coalition}/datasets/capacity/classes"),
                &owners[0],
                Some(json!({ "columns": [
                    { "column": "region", "class": "dimension" },
                    { "column": "week", "class": "dimension" },
                    { "column": "masks", "class": "metric" },
                    { "column": "day", "class": "timestamp" },
                ] })),
            )
            .await;
        assert_eq!(status, 200, "{classified}");
        // A member queries the pool: Filtra's share of every statistic is far above 25%, so the
        // engine withholds them all and says why.
        let (status, answer) = api
            .post(
                "/api/v1/queries",
                &owners[3],
                json!({ "purpose": "capacity-planning", "sql": "SELECT region, SUM(masks) AS masks FROM capacity GROUP BY region" }),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["rows"], json!([]), "{answer}");
        assert_eq!(
            answer["report"]["rows_suppressed_by_contributor_dominance"], 2,
            "{answer}"
        );
        // The contributor column is never output.
        let (status, problem) = api
            .post(
                "/api/v1/queries",
                &owners[3],
                json!({ "purpose": "capacity-planning", "sql": "SELECT contributor, SUM(masks) FROM capacity GROUP BY contributor" }),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        // An outsider does not see the pool at all.
        let (status, _) = api
            .post(
                "/api/v1/queries",
                &outsider_owner,
                json!({ "purpose": "capacity-planning", "sql": "SELECT COUNT(*) FROM capacity" }),
            )
            .await;
        assert_eq!(status, 400);

        // Publishing statistics by proposal: without Filtra's rows dominating (a count of weeks
        // reported), the statistic has six contributors and none above a quarter.
        let publish = api
            .propose(
                &coalition,
                &owners[0],
                json!({ "title": "Publish weekly capacity reports", "topic": "data",
                        "actions": [{ "type": "publish_statistics", "title": "Weekly capacity reports by region",
                                      "purpose": "capacity-planning",
                                      "sql": "SELECT region, COUNT(*) AS reports FROM capacity GROUP BY region" }] }),
            )
            .await;
        let publish_id = publish["id"].as_str().unwrap().to_owned();
        for owner in &owners[0..4] {
            let (status, voted) = api.vote(&publish_id, owner, "yes").await;
            assert_eq!(status, 200, "{voted}");
        }
        let (status, executed) = api
            .post(
                &format!("/api/v1/proposals/{publish_id}/execute"),
                &owners[0],
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{executed}");
        assert_eq!(executed["executions"][0]["succeeded"], true, "{executed}");
        let (_, view) = api
            .get(&format!("/api/v1/coalitions/{coalition}"), &outsider_owner)
            .await;
        let publication = &view["publications"][0];
        assert_eq!(publication["rows"].as_array().unwrap().len(), 2, "{view}");

        // The register: Popolo motions and vote events whose counts equal their votes' weights.
        let (status, register) = api
            .get(
                &format!("/api/v1/coalitions/{coalition}/register"),
                &outsider_owner,
            )
            .await;
        assert_eq!(status, 200, "{register}");
        let events = register["vote_events"].as_array().unwrap();
        assert_eq!(events.len(), 6, "six proposals");
        for event in events {
            for count in event["counts"].as_array().unwrap() {
                let sum: u64 = event["votes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|vote| vote["option"] == count["option"])
                    .map(|vote| vote["weight"].as_u64().unwrap())
                    .sum();
                assert_eq!(count["value"].as_u64().unwrap(), sum, "{event}");
            }
        }
        let admitted = register["motions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["motion"]["id"] == admit_id.as_str())
            .unwrap();
        assert_eq!(admitted["motion"]["result"], "pass");
        assert_eq!(admitted["executions"][0]["succeeded"], true);

        // Every vote and execution is in the coalition's audit log, with the proposal as actor.
        let (status, audit) = api
            .get(
                &format!("/api/v1/orgs/{coalition}/audit?limit=200"),
                &api.operator_token,
            )
            .await;
        assert_eq!(status, 200, "{audit}");
        let actions: Vec<&str> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["action"].as_str().unwrap())
            .collect();
        assert!(actions.contains(&"coalition.participate"), "{actions:?}");
        assert!(actions.contains(&"coalition.execute"), "{actions:?}");
        assert!(
            audit["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|entry| entry["credential"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("proposal:"))),
            "the coalition's own actions name the proposal"
        );
    }
}

/// Twelve members vote on one proposal at once, twice each (votes may change until the close):
/// every ballot is kept, each member's latest counts once, and the tally is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_votes_on_one_proposal_lose_none_and_count_each_member_once() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let mut orgs = Vec::new();
        let mut owners = Vec::new();
        for index in 0..12 {
            let org = api.partner(&format!("Member {index}")).await;
            owners.push(
                api.member_token(&org, &format!("owner{index}@v.example"), "owner")
                    .await,
            );
            orgs.push(org);
        }
        let (status, founded) = api
            .post(
                "/api/v1/coalitions",
                &owners[0],
                json!({ "name": "Concurrent", "purpose": "votes at once",
                        "charter": { "votes_changeable": false, "early_close": true } }),
            )
            .await;
        assert_eq!(status, 201, "{founded}");
        let coalition = founded["id"].as_str().unwrap().to_owned();
        let admit = api
            .propose(
                &coalition,
                &owners[0],
                json!({ "title": "Admit eleven", "actions": orgs[1..].iter().map(|org| json!({ "type": "admit_member", "org_id": org })).collect::<Vec<_>>() }),
            )
            .await;
        let admit_id = admit["id"].as_str().unwrap();
        let (status, _) = api.vote(admit_id, &owners[0], "yes").await;
        assert_eq!(status, 200);
        let (status, _) = api
            .post(
                &format!("/api/v1/proposals/{admit_id}/execute"),
                &owners[0],
                json!({}),
            )
            .await;
        assert_eq!(status, 200);

        // Amend the charter so votes stay open and changeable; amendments pass with 2/3.
        let amend = api
            .propose(
                &coalition,
                &owners[0],
                json!({ "title": "Changeable votes", "actions": [{ "type": "amend_charter", "charter": { "votes_changeable": true } }] }),
            )
            .await;
        let amend_id = amend["id"].as_str().unwrap().to_owned();
        for owner in &owners[..9] {
            let (status, voted) = api.vote(&amend_id, owner, "yes").await;
            if voted["status"] != "open" {
                assert_eq!(voted["status"], "passed", "{voted}");
                break;
            }
            assert_eq!(status, 200, "{voted}");
        }
        let (status, executed) = api
            .post(
                &format!("/api/v1/proposals/{amend_id}/execute"),
                &owners[0],
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{executed}");
        assert_eq!(executed["status"], "executed", "{executed}");

        let open = api
            .propose(
                &coalition,
                &owners[1],
                json!({ "title": "Anything", "actions": [{ "type": "remove_member", "org_id": orgs[11] }] }),
            )
            .await;
        let open_id = open["id"].as_str().unwrap().to_owned();
        // Each member votes no, then yes, concurrently with all the others.
        let votes = owners.iter().map(|owner| {
            let api = &api;
            let open_id = open_id.clone();
            async move {
                let (first, _) = api.vote(&open_id, owner, "no").await;
                let (second, body) = api.vote(&open_id, owner, "yes").await;
                (first, second, body)
            }
        });
        for (first, second, body) in futures_util::future::join_all(votes).await {
            assert_eq!((first, second), (StatusCode::OK, StatusCode::OK), "{body}");
        }
        let (_, view) = api
            .get(&format!("/api/v1/proposals/{open_id}"), &owners[0])
            .await;
        assert_eq!(
            view["status"], "open",
            "votes can change: nothing closes early"
        );
        assert_eq!(view["ballots"], 24, "{view}");
        assert_eq!(view["tally"]["yes"], 12, "{view}");
        assert_eq!(view["tally"]["no"], 0, "{view}");
        assert_eq!(view["tally"]["votes"].as_array().unwrap().len(), 12);
    }
}
