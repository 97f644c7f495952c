//! The model-based property test: random marketplace histories through the pure steps and the real ledger, every invariant checked after every operation.

use proptest::prelude::*;

use crate::world::{CUSTOMERS, Operation, SELLERS, World};

fn operation() -> impl Strategy<Value = Operation> {
    let index = 0usize..3;
    prop_oneof![
        2 => (0..CUSTOMERS, prop::collection::vec((0usize..6, 1u32..4), 1..4))
            .prop_map(|(customer, items)| Operation::Place { customer, items }),
        3 => (index.clone(), 0usize..4).prop_map(|(order, token)| Operation::PayByCard { order, token }),
        3 => index.clone().prop_map(|order| Operation::PayFromWallet { order }),
        2 => (0..CUSTOMERS, 1i64..20_000).prop_map(|(customer, amount)| Operation::TopUp { customer, amount }),
        2 => Just(Operation::Deliver),
        3 => (1u32..40).prop_map(|hours| Operation::Advance { hours }),
        6 => (index.clone(), 0..SELLERS).prop_map(|(order, seller)| Operation::Fulfil { order, seller }),
        4 => (index.clone(), 0..SELLERS).prop_map(|(order, seller)| Operation::Release { order, seller }),
        4 => (index.clone(), 0usize..4, prop_oneof![1u32..1_000, Just(1_000u32)])
            .prop_map(|(order, line, per_mille)| Operation::Refund { order, line, per_mille }),
        1 => index.clone().prop_map(|order| Operation::Cancel { order }),
        2 => (0..SELLERS).prop_map(|seller| Operation::Payout { seller }),
        2 => (0..CUSTOMERS, 0usize..2, 1i64..20_000)
            .prop_map(|(customer, rule, amount)| Operation::Accrue { customer, rule, amount }),
        2 => (0..CUSTOMERS, 0..SELLERS, 1i64..80)
            .prop_map(|(customer, partner, points)| Operation::Redeem { customer, partner, points }),
        1 => Just(Operation::Expire),
        2 => (0usize..4, 0usize..4, 1i64..20_000)
            .prop_map(|(debtor, creditor, amount)| Operation::Oblige { debtor, creditor, amount }),
        1 => Just(Operation::CloseWindow),
        2 => any::<usize>().prop_map(|index| Operation::Replay { index }),
    ]
}

fn cases() -> u32 {
    std::env::var("AGORA_MARKET_PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_marketplace_histories_keep_every_invariant(
        seed in any::<u64>(),
        operations in prop::collection::vec(operation(), 1..60),
    ) {
        let mut world = World::new(seed);
        for operation in &operations {
            world.run(operation);
        }
        // Let every notification arrive, then check again: late captures settle, duplicates do nothing.
        world.run(&Operation::Advance { hours: 24 });
    }
}

/// A long history, so that the property's operations are known to reach every kind of step.
#[test]
fn a_long_history_reaches_every_step() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let mut world = World::new(7);
    let strategy = operation();
    for _ in 0..800 {
        let operation = strategy.new_tree(&mut runner).expect("a value").current();
        world.run(&operation);
    }
    world.run(&Operation::Advance { hours: 48 });
    for step in [
        "place",
        "capture",
        "pay from wallet",
        "fulfil",
        "release",
        "refund",
        "cancel",
        "payout",
        "accrue",
        "redeem",
        "expire",
        "obligation",
        "close window",
        "replay",
        "duplicate capture ignored",
        "refused by the rules",
        "refused by the ledger",
        "top up",
        "refund from available",
    ] {
        assert!(
            world.stats.get(step).copied().unwrap_or(0) > 0,
            "never reached {step}: {:?}",
            world.stats
        );
    }
}
