//! The portal's coalition pages over HTTP with cookies, on each backend: a member reads the
//! dashboard (the goal with its progress chart, a pledge, the members, a proposal with its live
//! tally), votes through the form and sees the tally change; a second vote under a charter that
//! makes votes final, a forged form, and an outsider's vote are each refused, the refusals shown
//! on the proposal's page.

use agora_app::{Call, NewCoalition, NewGoal, NewPledge, NewProposal, ProposalAction};
use agora_domain::{Actor, OrgId, RequestId, Role, Timestamp};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{TestApi, backends};
use crate::portal_market::{Visitor, add_member};

const PASSWORD: &str = "the right password";

fn call(actor: &Actor) -> Call<'_> {
    Call::new(actor, RequestId::new())
}

/// The text of the element with `id`, up to its first tag.
fn text_of<'h>(html: &'h str, id: &str) -> &'h str {
    html.split(&format!("id=\"{id}\">"))
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("the page has #{id}: {html}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_follow_a_coalition_and_vote_in_the_portal() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let maskworks: OrgId = api.partner("Maskworks").await.parse().unwrap();
        let filtra: OrgId = api.partner("Filtra").await.parse().unwrap();
        let cotton: OrgId = api.partner("Cotton Co").await.parse().unwrap();
        let outsider: OrgId = api.partner("Outsider Ltd").await.parse().unwrap();
        add_member(&api, maskworks, "mia@maskworks.example", Role::Owner).await;
        add_member(&api, filtra, "fil@filtra.example", Role::Owner).await;
        add_member(&api, cotton, "cora@cotton.example", Role::Owner).await;
        add_member(&api, outsider, "out@outsider.example", Role::Owner).await;
        let mia = Visitor::sign_in(&api, "mia@maskworks.example", PASSWORD).await;
        let fil = Visitor::sign_in(&api, "fil@filtra.example", PASSWORD).await;
        let out = Visitor::sign_in(&api, "out@outsider.example", PASSWORD).await;
        let (mia_actor, fil_actor) = (mia.actor().await, fil.actor().await);

        // Founded under a charter whose votes are final, so a proposal closes once certain.
        let founded = api
            .app
            .found_coalition(
                &call(&mia_actor),
                NewCoalition {
                    name: "Mask Makers".into(),
                    purpose: "Scale up mask production".into(),
                    charter: Some(
                        json!({ "votes_changeable": false, "early_close": true, "quorum_bps": 5000 }),
                    ),
                    query_purposes: vec![],
                    goals: vec![NewGoal {
                        title: "Masks a week".into(),
                        metric: "masks produced per week".into(),
                        unit: "masks".into(),
                        target: 1000,
                        deadline: Timestamp::parse_rfc3339("2099-01-01T00:00:00Z").unwrap(),
                        parent: None,
                        weight: 0,
                    }],
                },
            )
            .await
            .unwrap();
        let coalition = founded.id;
        let goal = founded.goals[0].id;
        // The founder alone admits Filtra and Cotton Co: certain at once, then run.
        let admit = api
            .app
            .propose(
                &call(&mia_actor),
                coalition,
                NewProposal {
                    title: "Admit two manufacturers".into(),
                    body: String::new(),
                    topic: Some("membership".into()),
                    actions: [filtra, cotton]
                        .into_iter()
                        .map(|org_id| ProposalAction::AdmitMember {
                            org_id,
                            steward: false,
                            stake: 0,
                        })
                        .collect(),
                    voting_seconds: None,
                },
            )
            .await
            .unwrap();
        let admit = api
            .app
            .vote(
                &call(&mia_actor),
                admit.id,
                agora_app::parse_choice("yes").unwrap(),
                "",
            )
            .await
            .unwrap();
        assert_eq!(admit.status, "passed");
        api.app
            .execute_proposal(&call(&mia_actor), admit.id)
            .await
            .unwrap();
        api.app
            .pledge(
                &call(&fil_actor),
                coalition,
                NewPledge {
                    goal_id: goal,
                    quantity: 300,
                    due: Timestamp::parse_rfc3339("2098-01-01T00:00:00Z").unwrap(),
                    condition: None,
                    note: String::new(),
                },
            )
            .await
            .unwrap();
        let open = api
            .app
            .propose(
                &call(&mia_actor),
                coalition,
                NewProposal {
                    title: "Admit Outsider Ltd".into(),
                    body: "They make elastic bands.".into(),
                    topic: Some("membership".into()),
                    actions: vec![ProposalAction::AdmitMember {
                        org_id: outsider,
                        steward: false,
                        stake: 0,
                    }],
                    voting_seconds: None,
                },
            )
            .await
            .unwrap();

        // The nav links the list; the list links the dashboard.
        let home = fil.get("/").await;
        assert!(home.html.contains("href=\"/coalitions\""), "{}", home.html);
        let list = fil.get("/coalitions").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.html);
        let path = format!("/coalitions/{coalition}");
        assert!(
            list.html.contains(&format!("href=\"{path}\"")),
            "{}",
            list.html
        );
        assert!(list.html.contains("Scale up mask production"));

        // The dashboard: the goal and its chart, the pledge, the members, the open proposal.
        let dashboard = fil.get(&path).await;
        assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.html);
        let html = &dashboard.html;
        assert!(html.contains("Masks a week"), "{html}");
        assert!(html.contains("<svg class=\"progress-chart\""), "{html}");
        assert!(html.contains("<polyline class=\"pledged\""), "{html}");
        assert!(
            html.contains("300 of 1000 masks pledged and 0 fulfilled"),
            "the chart's text alternative: {html}"
        );
        assert!(
            html.contains("<tr class=\"pledge-active\"><th scope=\"row\">Filtra</th><td>Masks a week</td><td class=\"amount\">300</td>"),
            "{html}"
        );
        for member in ["Maskworks", "Filtra", "Cotton Co"] {
            assert!(
                html.contains(&format!("<tr><th scope=\"row\">{member}</th>")),
                "{member}: {html}"
            );
        }
        let proposal_path = format!("/proposals/{}", open.id);
        assert!(
            html.contains(&format!(
                "href=\"{proposal_path}\">#{} Admit Outsider Ltd",
                open.number
            )),
            "{html}"
        );
        assert!(
            html.contains("0 yes, 0 no, 0 abstain, 0 block of 3"),
            "{html}"
        );
        assert!(html.contains("final once cast"), "{html}");
        let register = fil.get(&format!("{path}/register.json")).await;
        assert_eq!(register.status, StatusCode::OK);
        let register: serde_json::Value = serde_json::from_str(&register.html).unwrap();
        assert!(register.is_object(), "{register}");

        // The executed proposal reads its actions and their outcomes.
        let executed = fil.get(&format!("/proposals/{}", admit.id)).await;
        assert!(executed.html.contains("Admit Filtra"), "{}", executed.html);
        assert!(
            executed.html.contains("admitted Cotton Co"),
            "{}",
            executed.html
        );
        assert!(!executed.html.contains("id=\"vote-form\""));

        // A member votes through the form; the tally counts it.
        let before = fil.get(&proposal_path).await;
        assert!(
            before.html.contains("<form id=\"vote-form\""),
            "{}",
            before.html
        );
        assert!(
            !before.html.contains("value=\"block\""),
            "the charter allows no blocks"
        );
        let voted = fil
            .post(
                &format!("{proposal_path}/vote"),
                &[("choice", "yes"), ("reason", "more capacity")],
            )
            .await;
        assert_eq!(voted.status, 303, "{}", voted.html);
        assert_eq!(
            voted.location.as_deref(),
            Some(format!("{proposal_path}?done=vote").as_str())
        );
        let after = fil.get(&format!("{proposal_path}?done=vote")).await;
        assert_eq!(text_of(&after.html, "tally-yes"), "1");
        assert_eq!(text_of(&after.html, "proposal-status"), "open");
        assert!(after.html.contains("id=\"vote-notice\""), "{}", after.html);
        assert!(
            after
                .html
                .contains("<tr><th scope=\"row\">Filtra</th><td class=\"choice-yes\">yes</td>"),
            "{}",
            after.html
        );
        assert!(
            !after.html.contains("id=\"vote-form\""),
            "a final vote is not offered again"
        );
        assert!(
            fil.get(&path)
                .await
                .html
                .contains("1 yes, 0 no, 0 abstain, 0 block of 3")
        );

        // Voting again is refused: the charter makes votes final.
        let again = fil
            .post(&format!("{proposal_path}/vote"), &[("choice", "no")])
            .await;
        assert_eq!(again.status, 409, "{}", again.html);
        assert!(
            text_of(&again.html, "vote-error").contains("final once cast"),
            "{}",
            again.html
        );

        // A form without the session's token is refused and counts nothing.
        let forged = api
            .client
            .post(format!("{}{proposal_path}/vote", api.url))
            .header(
                "cookie",
                format!(
                    "agora_session={}",
                    api.app
                        .sign_in("mia@maskworks.example", PASSWORD, RequestId::new())
                        .await
                        .unwrap()
                        .session_secret
                ),
            )
            .form(&[("csrf_token", "forged"), ("choice", "no")])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403, "a form without the session's token");

        // An outsider reads the proposal but is offered no form, and its post is refused.
        let outside = out.get(&proposal_path).await;
        assert_eq!(outside.status, StatusCode::OK, "{}", outside.html);
        assert!(!outside.html.contains("id=\"vote-form\""));
        assert!(outside.html.contains("not a member"), "{}", outside.html);
        let refused = out
            .post(&format!("{proposal_path}/vote"), &[("choice", "yes")])
            .await;
        assert_eq!(refused.status, 403, "{}", refused.html);
        assert!(
            text_of(&refused.html, "vote-error")
                .starts_with("Your vote was not counted: Not allowed"),
            "{}",
            refused.html
        );
        let unchanged = mia.get(&proposal_path).await;
        assert_eq!(text_of(&unchanged.html, "tally-yes"), "1");
        assert_eq!(text_of(&unchanged.html, "tally-no"), "0");
        assert!(
            unchanged.html.contains("<form id=\"vote-form\""),
            "mia has not voted"
        );
    }
}
