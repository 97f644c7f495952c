//! Settlement: obligations as net positions, the net debit cap, and closing a window to a report that sums to zero.

use agora_domain::{Error, ObligationId, WindowId};
use agora_market::account_id;
use agora_market::accounts::AccountPurpose;
use agora_market::settlement::{self, Obligation, Window, WindowStatus};
use uuid::Uuid;

use crate::books::{Books, Submitted};
use crate::fixtures::{at, euro, org};

fn obligation(n: u128, debtor: u128, creditor: u128, amount: i64) -> Obligation {
    Obligation {
        id: ObligationId::from_uuid(Uuid::from_u128(0x5000 + n)),
        debtor: org(debtor),
        creditor: org(creditor),
        currency: euro(),
        amount,
        reference: format!("invoice {n}"),
    }
}

#[test]
fn positions_net_out_the_cap_holds_and_closing_zeroes_them() {
    let mut books = Books::default();
    let mut window = Window::open(WindowId::from_uuid(Uuid::from_u128(1)), at(0));
    for (n, debtor, creditor, amount) in [(1, 1, 2, 100), (2, 2, 3, 30), (3, 3, 1, 50)] {
        let (next, plan) = settlement::record(
            &window,
            &obligation(n, debtor, creditor, amount),
            100,
            at(0),
        )
        .unwrap();
        assert_eq!(books.submit(&plan, at(0)), Submitted::Created);
        window = next;
    }
    assert_eq!(
        [1, 2, 3].map(|n| window.position(org(n), euro())),
        [-50, 70, -20]
    );
    for n in [1, 2, 3] {
        let position = account_id(
            &AccountPurpose::SettlementPosition { partner: org(n) },
            euro(),
        );
        assert_eq!(books.balance(position), window.position(org(n), euro()));
    }
    // Partner 1 may owe 100 at most: 51 more would make it 101.
    let refused = settlement::record(&window, &obligation(4, 1, 2, 51), 100, at(0));
    assert!(
        matches!(&refused, Err(Error::LimitExceeded { limit, .. }) if limit == "net_debit_cap"),
        "{refused:?}"
    );
    assert!(settlement::record(&window, &obligation(5, 1, 1, 5), 100, at(0)).is_err());

    let (closed, report, plan) = settlement::close(&window, at(60)).unwrap();
    assert_eq!(books.submit(&plan, at(60)), Submitted::Created);
    assert_eq!(report.positions.len(), 3);
    assert_eq!(report.totals.get("EUR"), Some(&0));
    assert_eq!(report.obligations, 3);
    assert_eq!(closed.status, WindowStatus::Closed);
    for n in [1, 2, 3] {
        let position = account_id(
            &AccountPurpose::SettlementPosition { partner: org(n) },
            euro(),
        );
        assert_eq!(books.balance(position), 0);
    }
    assert_eq!(
        books.balance(account_id(&AccountPurpose::SettlementHouse, euro())),
        0
    );
    assert!(matches!(
        settlement::close(&closed, at(61)),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        settlement::record(&closed, &obligation(6, 1, 2, 1), 100, at(61)),
        Err(Error::Conflict(_))
    ));
    books.check().unwrap();
}
