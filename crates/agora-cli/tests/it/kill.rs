//! A server killed with SIGKILL in the middle of writes loses nothing it acknowledged, keeps
//! nothing half-written, and its audit chain still verifies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{TestServer, agora, backends, http};

#[test]
fn sigkill_during_writes_loses_no_acknowledged_change_and_the_chain_verifies() {
    for backend in backends() {
        let mut server = TestServer::start(backend);
        for round in 0..3 {
            let acknowledged = Arc::new(Mutex::new(Vec::new()));
            let url = server.url.clone();
            let token = server.owner_token.clone();
            let writers: Vec<_> = (0..4)
                .map(|writer| {
                    let acknowledged = acknowledged.clone();
                    let url = url.clone();
                    let token = token.clone();
                    std::thread::spawn(move || {
                        let client = http();
                        for index in 0.. {
                            let name = format!("Round {round} writer {writer} org {index}");
                            let response = client
                                .post(format!("{url}/api/v1/orgs"))
                                .bearer_auth(&token)
                                .json(&serde_json::json!({ "name": name }))
                                .timeout(Duration::from_secs(5))
                                .send();
                            match response {
                                Ok(response) if response.status() == 201 => {
                                    acknowledged.lock().unwrap().push(name)
                                }
                                // The server died under us: stop writing.
                                _ => return,
                            }
                        }
                    })
                })
                .collect();
            // Let some writes land, then pull the plug while others are in flight.
            while acknowledged.lock().unwrap().len() < 20 + round * 7 {
                std::thread::sleep(Duration::from_millis(5));
            }
            server.kill_and_restart();
            for writer in writers {
                writer.join().unwrap();
            }
            let acknowledged = acknowledged.lock().unwrap().clone();
            let client = http();
            let mut names = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(cursor) => format!("{}/api/v1/orgs?limit=200&cursor={cursor}", server.url),
                    None => format!("{}/api/v1/orgs?limit=200", server.url),
                };
                let page: serde_json::Value = client
                    .get(path)
                    .bearer_auth(&server.owner_token)
                    .send()
                    .unwrap()
                    .json()
                    .unwrap();
                names.extend(
                    page["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|org| org["name"].as_str().unwrap().to_owned()),
                );
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            for name in &acknowledged {
                assert_eq!(
                    names.iter().filter(|present| *present == name).count(),
                    1,
                    "{backend:?} round {round}: acknowledged {name} is not there exactly once"
                );
            }
        }
        assert!(server.stop(), "{backend:?}");
        let output = agora()
            .args(["audit", "verify"])
            .args(server.storage_args())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{backend:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
