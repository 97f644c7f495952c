//! Idempotency keys are forgotten after their time: older ones go, answered or not, newer ones
//! stay, and a forgotten key can be claimed again as a new request.

use agora_domain::Timestamp;
use agora_store::IdempotencyClaim;

use crate::harness::{TestStore, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_older_than_the_cutoff_are_forgotten_and_can_be_claimed_again() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let mut tx = store.write().await.unwrap();
        assert_eq!(
            tx.claim_idempotency_key("token:a:org.create", "old", b"h1")
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
        tx.complete_idempotency_key("token:a:org.create", "old", "{}")
            .await
            .unwrap();
        tx.claim_idempotency_key("token:a:org.create", "stuck", b"h2")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let cutoff = Timestamp::now();
        let mut tx = store.write().await.unwrap();
        tx.claim_idempotency_key("token:a:org.create", "new", b"h3")
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.expire_idempotency_keys(cutoff).await.unwrap(), 2);
        // The answered and the stuck key are gone: each is a new request now.
        assert_eq!(
            tx.claim_idempotency_key("token:a:org.create", "old", b"other")
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
        assert_eq!(
            tx.claim_idempotency_key("token:a:org.create", "stuck", b"h2")
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
        // The newer one stays, still in progress.
        let newer = tx
            .claim_idempotency_key("token:a:org.create", "new", b"h3")
            .await;
        assert!(
            matches!(newer, Err(agora_domain::Error::Conflict(_))),
            "{newer:?}"
        );
        drop(tx);
    }
}
