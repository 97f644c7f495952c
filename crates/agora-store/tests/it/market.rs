//! The marketplace's documents, steps and provider notifications, on each backend.

use agora_domain::{OrgId, Timestamp};
use agora_store::{DocumentWrite, StepStatus};

use crate::harness::{TestStore, backends};

fn write<'a>(
    kind: &'a str,
    id: &'a str,
    owner: Option<&'a str>,
    sort_key: Option<i64>,
    body: &'a str,
) -> DocumentWrite<'a> {
    DocumentWrite {
        kind,
        id,
        owner,
        status: Some("open"),
        sort_key,
        body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_replaced_whole_and_found_by_owner_expiry_and_seller() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let (first, later) = (Timestamp::from_micros(1_000), Timestamp::from_micros(2_000));
        let mut tx = store.write().await.unwrap();
        tx.put_document(
            &write("lot", "lot_a", Some("usr_1"), Some(50), r#"{"n":1}"#),
            first,
        )
        .await
        .unwrap();
        tx.put_document(
            &write("lot", "lot_b", Some("usr_2"), Some(10), r#"{"n":2}"#),
            first,
        )
        .await
        .unwrap();
        tx.put_document(
            &write("lot", "lot_c", Some("usr_1"), Some(99), r#"{"n":3}"#),
            first,
        )
        .await
        .unwrap();
        tx.put_document(&write("order", "ord_x", Some("usr_1"), None, "{}"), first)
            .await
            .unwrap();
        let seller = OrgId::new();
        tx.link_order_sellers("ord_x", &[seller, seller])
            .await
            .unwrap();
        // The transaction sees its own writes.
        assert_eq!(
            tx.document("lot", "lot_a").await.unwrap().unwrap().body,
            r#"{"n":1}"#
        );
        tx.commit().await.unwrap();

        let mut tx = store.write().await.unwrap();
        tx.put_document(
            &write("lot", "lot_a", Some("usr_1"), Some(5), r#"{"n":4}"#),
            later,
        )
        .await
        .unwrap();
        // Dropped without commit: rolled back.
        drop(tx);
        let stored = store.document("lot", "lot_a").await.unwrap().unwrap();
        assert_eq!(
            (stored.body.as_str(), stored.sort_key),
            (r#"{"n":1}"#, Some(50))
        );

        let mut tx = store.write().await.unwrap();
        tx.put_document(
            &write("lot", "lot_a", Some("usr_1"), Some(5), r#"{"n":4}"#),
            later,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let stored = store.document("lot", "lot_a").await.unwrap().unwrap();
        assert_eq!(stored.body, r#"{"n":4}"#);
        assert_eq!((stored.created_at, stored.updated_at), (first, later));

        let mine: Vec<String> = store
            .documents("lot", Some("usr_1"), None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|document| document.id)
            .collect();
        assert_eq!(mine, ["lot_a", "lot_c"]);
        let page: Vec<String> = store
            .documents("lot", None, Some("lot_a"), 1)
            .await
            .unwrap()
            .into_iter()
            .map(|document| document.id)
            .collect();
        assert_eq!(page, ["lot_b"]);
        let due: Vec<String> = store
            .documents_due("lot", 50, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|document| document.id)
            .collect();
        assert_eq!(due, ["lot_a", "lot_b"], "soonest first, up to the bound");
        let sold = store.seller_orders(seller, None, 10).await.unwrap();
        assert_eq!(sold.len(), 1);
        assert_eq!(sold[0].id, "ord_x");
        assert!(
            store
                .seller_orders(OrgId::new(), None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_is_planned_once_and_finished_once_and_duplicate_notifications_are_recognised() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let now = Timestamp::now();
        let mut tx = store.write().await.unwrap();
        tx.insert_step("order/ord_1/capture", "capture", "ord_1", "[]", "{}", now)
            .await
            .unwrap();
        tx.insert_step("order/ord_2/capture", "capture", "ord_2", "[]", "{}", now)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.write().await.unwrap();
        let again = tx
            .insert_step("order/ord_1/capture", "capture", "ord_1", "[]", "{}", now)
            .await;
        assert!(
            matches!(again, Err(agora_domain::Error::Conflict(_))),
            "{again:?}"
        );
        drop(tx);

        let planned: Vec<String> = store
            .planned_steps()
            .await
            .unwrap()
            .into_iter()
            .map(|step| step.key)
            .collect();
        assert_eq!(planned, ["order/ord_1/capture", "order/ord_2/capture"]);

        let mut tx = store.write().await.unwrap();
        tx.finish_step("order/ord_1/capture", StepStatus::Done, None, now)
            .await
            .unwrap();
        tx.finish_step(
            "order/ord_2/capture",
            StepStatus::Refused,
            Some("exceeds_credits"),
            now,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.write().await.unwrap();
        let twice = tx
            .finish_step("order/ord_1/capture", StepStatus::Done, None, now)
            .await;
        assert!(
            matches!(twice, Err(agora_domain::Error::Conflict(_))),
            "{twice:?}"
        );
        drop(tx);
        assert!(store.planned_steps().await.unwrap().is_empty());
        let refused = store.step("order/ord_2/capture").await.unwrap().unwrap();
        assert_eq!(refused.status, StepStatus::Refused);
        assert_eq!(refused.reason.as_deref(), Some("exceeds_credits"));
        assert_eq!(
            store.step_counts().await.unwrap(),
            [(StepStatus::Done, 1), (StepStatus::Refused, 1)]
        );

        let mut tx = store.write().await.unwrap();
        assert!(
            tx.note_provider_event("sandbox", "evt_1", now)
                .await
                .unwrap()
        );
        assert!(
            !tx.note_provider_event("sandbox", "evt_1", now)
                .await
                .unwrap()
        );
        assert!(tx.note_provider_event("other", "evt_1", now).await.unwrap());
        tx.commit().await.unwrap();
    }
}
