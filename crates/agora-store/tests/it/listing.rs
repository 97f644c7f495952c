//! Listings on both backends: search ranks and finds by title, category and description words,
//! hostile queries stay words, browse filters and pages, stock never goes negative and a slot is
//! never booked twice however many writers race, and the migrations apply with 0003 missing.

use agora_domain::ledger::Currency;
use agora_domain::listing::{
    Category, Description, KindName, Listing, ListingKind, ListingStatus, SearchQuery, Slot, Title,
};
use agora_domain::model::{OrgKind, OrgStatus, Organisation};
use agora_domain::{Error, ListingId, OrderId, OrgId, OrgName, SlotId, Timestamp};
use agora_store::{ListingChanges, ListingFilter, Store};
use sqlx::Row;

use crate::harness::{TestStore, backends};

async fn seller(store: &Store, name: &str) -> OrgId {
    let org = Organisation {
        id: OrgId::new(),
        name: OrgName::parse(name).unwrap(),
        kind: OrgKind::Partner,
        status: OrgStatus::Active,
        created_at: Timestamp::now(),
    };
    let mut tx = store.write().await.unwrap();
    tx.insert_org(&org).await.unwrap();
    tx.commit().await.unwrap();
    org.id
}

fn listing(seller: OrgId, title: &str, description: &str, category: &str, price: i64) -> Listing {
    let now = Timestamp::now();
    Listing {
        id: ListingId::new(),
        seller,
        kind: ListingKind::Product { stock: Some(10) },
        title: Title::parse(title).unwrap(),
        description: Description::parse(description).unwrap(),
        category: Category::parse(category).unwrap(),
        price,
        currency: Currency::parse("EUR").unwrap(),
        status: ListingStatus::Active,
        created_at: now,
        updated_at: now,
    }
}

async fn insert(store: &Store, listing: &Listing) {
    let mut tx = store.write().await.unwrap();
    tx.insert_listing(listing).await.unwrap();
    tx.commit().await.unwrap();
}

async fn search(store: &Store, text: &str) -> Vec<String> {
    let query = SearchQuery::parse(text).unwrap();
    store
        .search_listings(&query, &ListingFilter::default(), 0, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|listing| listing.title.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_migration_applies_once_in_order() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let rows = test
            .fetch_all("SELECT version FROM _sqlx_migrations ORDER BY version")
            .await;
        let versions: Vec<i64> = rows.iter().map(|row| row.get("version")).collect();
        let mut files: Vec<i64> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
                .unwrap()
                .map(|entry| {
                    let name = entry.unwrap().file_name().into_string().unwrap();
                    name.split('_').next().unwrap().parse().unwrap()
                })
                .collect();
        files.sort_unstable();
        assert_eq!(versions, files, "{backend:?}");
        // Running them again finds nothing to do.
        test.store.migrate().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_of_titles_categories_and_descriptions_and_ranks_titles_first() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let fresh = seller(store, "FreshMart").await;
        for (title, description, category) in [
            (
                "Organic whole milk",
                "From grass-fed cows, one litre.",
                "groceries/dairy",
            ),
            (
                "Butter",
                "Churned from fresh milk cream.",
                "groceries/dairy",
            ),
            (
                "Sourdough bread",
                "Baked every morning.",
                "groceries/bakery",
            ),
            (
                "Dental check-up",
                "A full check of teeth and gums.",
                "health/dental",
            ),
            ("Crème fraîche", "Thick and tangy.", "groceries/dairy"),
        ] {
            insert(store, &listing(fresh, title, description, category, 250)).await;
        }
        // The title match ranks above the description match.
        assert_eq!(
            search(store, "milk").await,
            ["Organic whole milk", "Butter"],
            "{backend:?}"
        );
        // Stemming: `breads` finds `bread`; categories are words too.
        assert_eq!(search(store, "breads").await, ["Sourdough bread"]);
        assert_eq!(search(store, "dental").await, ["Dental check-up"]);
        assert_eq!(search(store, "bakery").await, ["Sourdough bread"]);
        // Every word must match; OR offers alternatives; a minus excludes.
        assert_eq!(search(store, "milk cream").await, ["Butter"]);
        let mut either = search(store, "bread OR teeth").await;
        either.sort();
        assert_eq!(either, ["Dental check-up", "Sourdough bread"]);
        assert_eq!(search(store, "milk -cows").await, ["Butter"]);
        assert_eq!(
            search(store, "\"whole milk\"").await,
            ["Organic whole milk"]
        );
        assert!(search(store, "\"milk whole\"").await.is_empty());
        assert!(search(store, "caviar").await.is_empty());
        if backend == crate::harness::Backend::Sqlite {
            // Diacritics fold on SQLite's index (PostgreSQL's `english` configuration keeps them).
            assert_eq!(search(store, "creme").await, ["Crème fraîche"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_search_input_is_only_ever_words() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let fresh = seller(store, "FreshMart").await;
        insert(
            store,
            &listing(fresh, "Organic whole milk", "", "groceries/dairy", 250),
        )
        .await;
        insert(store, &listing(fresh, "Near and far", "", "travel", 250)).await;
        for hostile in [
            "\"",
            "milk\"",
            "milk*",
            "NEAR(milk",
            "NEAR(milk whole, 2)",
            "milk OR",
            "OR OR milk",
            "-",
            "--milk",
            "title:milk",
            "{title description}: milk",
            "^milk",
            "milk AND",
            "milk NOT",
            "'; DROP TABLE listings; --",
            "milk' OR '1'='1",
            "milk) OR (1=1",
            "\u{0}milk",
            "ミルク",
        ] {
            // Anything the parser accepts runs without an error, and finds only honest matches.
            if let Ok(query) = SearchQuery::parse(hostile) {
                let found = store
                    .search_listings(&query, &ListingFilter::default(), 0, 50)
                    .await
                    .unwrap_or_else(|e| panic!("{backend:?} {hostile:?}: {e}"));
                assert!(found.len() <= 2, "{hostile:?}");
            }
        }
        assert_eq!(search(store, "NEAR(milk").await, Vec::<String>::new());
        assert_eq!(search(store, "near").await, ["Near and far"]);
        // The table is still there.
        assert_eq!(search(store, "milk").await, ["Organic whole milk"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_filters_and_pages_newest_first_and_search_follows_updates() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let fresh = seller(store, "FreshMart").await;
        let bright = seller(store, "Brightbrew").await;
        let mut ids = Vec::new();
        for index in 0..7 {
            let seller = if index % 2 == 0 { fresh } else { bright };
            let category = if index < 4 {
                "groceries/dairy"
            } else {
                "groceries-extra"
            };
            let item = listing(seller, &format!("Item {index}"), "", category, 100 * index);
            insert(store, &item).await;
            ids.push(item.id);
        }
        let mut service = listing(fresh, "Delivery", "", "services", 500);
        service.kind = ListingKind::Service {
            duration_minutes: 30,
        };
        insert(store, &service).await;

        // Pages of 3, newest first, over the products.
        let filter = ListingFilter {
            kind: Some(KindName::Product),
            ..ListingFilter::default()
        };
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store.browse_listings(&filter, before, 3).await.unwrap();
            if page.is_empty() {
                break;
            }
            before = page.last().map(|listing| listing.id);
            seen.extend(page.iter().map(|listing| listing.id));
        }
        let newest_first: Vec<ListingId> = ids.iter().rev().copied().collect();
        assert_eq!(seen, newest_first, "{backend:?}");

        let count = |filter: ListingFilter| async move {
            store
                .browse_listings(&filter, None, 100)
                .await
                .unwrap()
                .len()
        };
        // A category prefix covers what lies below it, never a longer sibling name.
        let groceries = Category::parse("groceries").unwrap();
        assert_eq!(
            count(ListingFilter {
                category: Some(groceries),
                ..ListingFilter::default()
            })
            .await,
            4
        );
        assert_eq!(
            count(ListingFilter {
                seller: Some(bright),
                ..ListingFilter::default()
            })
            .await,
            3
        );
        assert_eq!(
            count(ListingFilter {
                price_min: Some(200),
                price_max: Some(400),
                ..ListingFilter::default()
            })
            .await,
            3
        );
        assert_eq!(
            count(ListingFilter {
                kind: Some(KindName::Service),
                ..ListingFilter::default()
            })
            .await,
            1
        );
        assert_eq!(
            count(ListingFilter {
                currency: Some(Currency::parse("USD").unwrap()),
                ..ListingFilter::default()
            })
            .await,
            0
        );

        // Search follows updates and archiving.
        let mut tx = store.write().await.unwrap();
        tx.update_listing(
            ids[0],
            &ListingChanges {
                title: Some(Title::parse("Goat cheese").unwrap()),
                ..ListingChanges::default()
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(search(store, "goat").await, ["Goat cheese"]);
        assert!(search(store, "\"item 0\"").await.is_empty());
        let mut tx = store.write().await.unwrap();
        tx.update_listing(
            ids[0],
            &ListingChanges {
                status: Some(ListingStatus::Archived),
                ..ListingChanges::default()
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert!(search(store, "goat").await.is_empty());
        let archived = ListingFilter {
            status: ListingStatus::Archived,
            ..ListingFilter::default()
        };
        assert_eq!(count(archived).await, 1);
        // Search pages by position.
        let query = SearchQuery::parse("item").unwrap();
        let first = store
            .search_listings(&query, &ListingFilter::default(), 0, 4)
            .await
            .unwrap();
        let rest = store
            .search_listings(&query, &ListingFilter::default(), 4, 4)
            .await
            .unwrap();
        assert_eq!((first.len(), rest.len()), (4, 2));
        assert!(first.iter().all(|a| rest.iter().all(|b| a.id != b.id)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_never_take_stock_below_zero() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let fresh = seller(store, "FreshMart").await;
        let mut milk = listing(fresh, "Milk", "", "groceries/dairy", 120);
        milk.kind = ListingKind::Product { stock: Some(5) };
        insert(store, &milk).await;

        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                let id = milk.id;
                tokio::spawn(async move {
                    let mut tx = store.write().await?;
                    let left = tx.take_stock(id, 1, Timestamp::now()).await?;
                    // Hold the transaction open a moment so that writers overlap on PostgreSQL.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    tx.commit().await?;
                    Ok::<_, Error>(left)
                })
            })
            .collect();
        let mut taken = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => taken += 1,
                Err(Error::Conflict(message)) => assert!(message.contains("left"), "{message}"),
                Err(other) => panic!("{backend:?}: {other}"),
            }
        }
        assert_eq!(taken, 5, "{backend:?}");
        let after = store.listing(milk.id).await.unwrap().unwrap();
        assert_eq!(after.kind, ListingKind::Product { stock: Some(0) });

        // Taking more than is left takes nothing; giving back restores; unlimited stays unlimited.
        let mut tx = store.write().await.unwrap();
        assert_eq!(
            tx.return_stock(milk.id, 2, Timestamp::now()).await.unwrap(),
            Some(2)
        );
        assert!(matches!(
            tx.take_stock(milk.id, 3, Timestamp::now()).await,
            Err(Error::Conflict(_))
        ));
        assert_eq!(
            tx.take_stock(milk.id, 2, Timestamp::now()).await.unwrap(),
            Some(0)
        );
        tx.commit().await.unwrap();
        let mut bread = listing(fresh, "Bread", "", "groceries/bakery", 300);
        bread.kind = ListingKind::Product { stock: None };
        insert(store, &bread).await;
        let mut tx = store.write().await.unwrap();
        assert_eq!(
            tx.take_stock(bread.id, 1000, Timestamp::now())
                .await
                .unwrap(),
            None
        );
        assert!(matches!(
            tx.take_stock(ListingId::new(), 1, Timestamp::now()).await,
            Err(Error::NotFound { .. })
        ));
        tx.commit().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_is_booked_once_however_many_orders_race_for_it() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let clinic = seller(store, "Smile Clinic").await;
        let mut checkup = listing(clinic, "Check-up", "", "health/dental", 4000);
        checkup.kind = ListingKind::Service {
            duration_minutes: 30,
        };
        insert(store, &checkup).await;
        let start = Timestamp::now().plus_seconds(86_400);
        let slots: Vec<Slot> = (0..3)
            .map(|index| Slot {
                id: SlotId::new(),
                listing_id: checkup.id,
                starts_at: start.plus_seconds(index * 1800),
                ends_at: start.plus_seconds(index * 1800 + 1800),
                booked_by_order: None,
            })
            .collect();
        let mut tx = store.write().await.unwrap();
        for slot in &slots {
            tx.insert_slot(slot, Timestamp::now()).await.unwrap();
        }
        tx.commit().await.unwrap();
        // The same start twice is refused (in a transaction of its own: on PostgreSQL a failed
        // statement spoils the rest of its transaction).
        let mut tx = store.write().await.unwrap();
        let twin = Slot {
            id: SlotId::new(),
            ..slots[0].clone()
        };
        assert!(matches!(
            tx.insert_slot(&twin, Timestamp::now()).await,
            Err(Error::Conflict(_))
        ));
        tx.commit().await.unwrap();

        let target = slots[1].id;
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let order = OrderId::new();
                    let mut tx = store.write().await?;
                    let slot = tx.book_slot(target, order, Timestamp::now()).await?;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    tx.commit().await?;
                    Ok::<_, Error>((order, slot))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(won) => winners.push(won),
                Err(Error::Conflict(message)) => {
                    assert!(message.contains("already booked"), "{message}")
                }
                Err(other) => panic!("{backend:?}: {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "{backend:?}");
        let (order, booked) = &winners[0];
        assert_eq!(booked.booked_by_order, Some(*order));
        assert_eq!(
            store.slot(target).await.unwrap().unwrap().booked_by_order,
            Some(*order)
        );

        // Free slots leave the booked one out, and page by start time.
        let free = store
            .free_slots(checkup.id, Timestamp::now(), None, 10)
            .await
            .unwrap();
        assert_eq!(
            free.iter().map(|slot| slot.id).collect::<Vec<_>>(),
            [slots[0].id, slots[2].id]
        );
        let first = store
            .free_slots(checkup.id, Timestamp::now(), None, 1)
            .await
            .unwrap();
        let after = first.last().map(|slot| (slot.starts_at, slot.id));
        let second = store
            .free_slots(checkup.id, Timestamp::now(), after, 1)
            .await
            .unwrap();
        assert_eq!(second[0].id, slots[2].id);

        // Releasing needs the booking order; then the slot is free again.
        let mut tx = store.write().await.unwrap();
        assert!(tx.release_slot(target, OrderId::new()).await.is_err());
        tx.release_slot(target, *order).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            store
                .free_slots(checkup.id, Timestamp::now(), None, 10)
                .await
                .unwrap()
                .len(),
            3
        );
    }
}
