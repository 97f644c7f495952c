//! `agora demo --seed-only`: the demo's marketplace, data commons and coalition stories happen, with the figures a reader can
//! check by hand, and a second run reuses the demo instead of seeding it again.

use crate::harness::agora;

#[test]
fn the_demo_seeds_a_marketplace_whose_figures_add_up_and_is_reused_on_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo");
    let run = || {
        let output = agora()
            .args(["demo", "--seed-only", "--data-dir"])
            .arg(&data_dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let first = run();
    assert!(first.contains("Seeded a fresh demo ecosystem"), "{first}");
    for expected in [
        "cleo@customer.example",
        "= 22.20 EUR",
        "FreshMart nets 9.69 EUR",
        "0.13 EUR of commission reversed, 2.47 EUR from FreshMart",
        "FreshMart was paid out 7.22 EUR",
        "Brightbrew has 11.40 EUR available",
        "commission revenue is 0.98 EUR",
        "The wallet holds 80.40 EUR",
        "booked by card",
        "): 12 left.",
        "Brightbrew owes FreshMart 0.50 EUR",
        "the operator owes FreshMart 0.10 EUR",
        "3 positions summing to zero",
        "Data commons:",
        "under `freshmart-sales-for-brands`",
        "refused by rule group_by_protected_column",
        "Coalition:",
        "Mask Makers Alliance: 9 members",
        "pledged 720000 (72.0%)",
        "Proposal #2 `Admit ClearShield Visors`: 4 yes, 1 no, 1 abstain of 8 → executed; admitted ClearShield Visors.",
        "Proposal #3 `Publish weekly pooled capacity` → executed; published `Weekly capacity by product line`: 24 rows",
        "mia@maskworks.example",
    ] {
        assert!(
            first.contains(expected),
            "missing `{expected}` in:\n{first}"
        );
    }
    let second = run();
    assert!(second.contains("Reusing the demo ecosystem"), "{second}");
    assert!(
        !second.contains("The marketplace"),
        "seeded twice:\n{second}"
    );
}
