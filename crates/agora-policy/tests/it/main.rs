//! Integration tests for `agora-policy`: the decision matrix as a table, and loading operator policies.

use std::str::FromStr;

use agora_domain::actor::Acting;
use agora_domain::authz::{Action, Context, Resource};
use agora_domain::{Actor, Credential, OrderId, OrgId, Role, SessionId, TokenId, UserId};
use agora_policy::{Authorizer, Decision, PolicyError};

/// The cast every row of a table is read against.
struct World {
    org_a: OrgId,
    org_b: OrgId,
    /// A coalition.
    org_c: OrgId,
    operator: OrgId,
    /// The principal of every row that names a user.
    alice: UserId,
    /// Someone else in the same organisations.
    bob: UserId,
}

impl World {
    fn new() -> Self {
        Self {
            org_a: OrgId::new(),
            org_b: OrgId::new(),
            org_c: OrgId::new(),
            operator: OrgId::new(),
            alice: UserId::new(),
            bob: UserId::new(),
        }
    }

    fn org(&self, name: &str) -> OrgId {
        match name {
            "A" => self.org_a,
            "B" => self.org_b,
            "C" => self.org_c,
            "OP" => self.operator,
            other => panic!("unknown organisation `{other}` (expected A, B or OP)"),
        }
    }

    fn user(&self, name: &str) -> UserId {
        match name {
            "alice" => self.alice,
            "bob" => self.bob,
            other => panic!("unknown user `{other}` (expected alice or bob)"),
        }
    }

    /// `system`, `customer`, or `<role>@<A|B|OP>`, with `+token` for a token credential.
    fn actor(&self, spec: &str) -> Actor {
        let (spec, via_token) = match spec.strip_suffix("+token") {
            Some(spec) => (spec, true),
            None => (spec, false),
        };
        let credential = if via_token {
            Credential::Token(TokenId::new())
        } else {
            Credential::Session(SessionId::new())
        };
        match spec {
            "system" => Actor::system(),
            "customer" => Actor {
                user_id: Some(self.alice),
                acting: None,
                credential,
            },
            _ => {
                let (role, org) = spec
                    .split_once('@')
                    .unwrap_or_else(|| panic!("bad principal `{spec}`"));
                let acting = Acting {
                    org_id: self.org(org),
                    role: Role::from_str(role).unwrap(),
                    is_operator: org == "OP",
                };
                Actor {
                    user_id: Some(self.alice),
                    acting: Some(acting),
                    credential,
                }
            }
        }
    }

    /// `instance`, `org:<A|B|OP>`, `token:<org>:<owner>`, `customer:<user>`, or
    /// `order:<customer>:<seller>[+<seller>…]` (`-` for no seller), or
    /// `protocol:<provider>:<consumer>[+<consumer>…]` (`-` for no consumer).
    fn resource(&self, spec: &str) -> Resource {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.as_slice() {
            ["instance"] => Resource::Instance,
            ["org", org] => Resource::Organisation(self.org(org)),
            ["token", org, owner] => Resource::Token {
                id: TokenId::new(),
                org_id: self.org(org),
                owner: self.user(owner),
            },
            ["customer", user] => Resource::Customer(self.user(user)),
            ["order", customer, sellers] => Resource::Order {
                id: OrderId::new(),
                customer: self.user(customer),
                sellers: sellers
                    .split('+')
                    .filter(|seller| *seller != "-")
                    .map(|seller| self.org(seller))
                    .collect(),
            },
            ["protocol", provider, consumers] => {
                let provider = self.org(provider);
                let mut parties = vec![provider];
                parties.extend(
                    consumers
                        .split('+')
                        .filter(|consumer| *consumer != "-")
                        .map(|consumer| self.org(consumer)),
                );
                Resource::Protocol {
                    id: agora_domain::ProtocolId::new(),
                    provider,
                    parties,
                }
            }
            ["coalition", id, members, stewards] => {
                let orgs = |list: &str| -> Vec<OrgId> {
                    list.split('+')
                        .filter(|org| *org != "-")
                        .map(|org| self.org(org))
                        .collect()
                };
                Resource::Coalition {
                    id: self.org(id),
                    members: orgs(members),
                    stewards: orgs(stewards),
                }
            }
            _ => panic!("bad resource `{spec}`"),
        }
    }
}

fn action(name: &str) -> Action {
    Action::ALL
        .into_iter()
        .find(|action| action.as_str() == name)
        .unwrap_or_else(|| panic!("unknown action `{name}`"))
}

/// Runs every row of `table` against `authorizer` and reports all mismatches at once.
///
/// A row is `principal action resource granted target expectation rule`; `#` starts a comment.
///
/// - `granted` is [`Context::granted_role`]: the role a new member or token would receive
///   (`member.add`, `token.create`), `-` for none.
/// - `target` is [`Context::target_role`]: the current role of the member being changed
///   (`member.add` of an existing member) or removed (`member.remove`), `-` for none.
/// - `expectation` is `allow` or `deny`, and `rule` the rule the decision must name.
fn check(authorizer: &Authorizer, table: &str) {
    let world = World::new();
    let mut failures = Vec::new();
    let mut rows = 0;
    for line in table.lines() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [
            principal,
            action_name,
            resource,
            granted,
            target,
            expect,
            rule,
        ] = fields.as_slice()
        else {
            panic!(
                "row `{line}` needs 7 fields: principal action resource granted target allow|deny rule"
            );
        };
        let role = |field: &str| (field != "-").then(|| Role::from_str(field).unwrap());
        let context = Context {
            granted_role: role(granted),
            target_role: role(target),
        };
        let decision = authorizer.decide(
            &world.actor(principal),
            action(action_name),
            &world.resource(resource),
            &context,
        );
        let allowed = match *expect {
            "allow" => true,
            "deny" => false,
            other => panic!("row `{line}`: expectation `{other}` is neither allow nor deny"),
        };
        if decision.allowed != allowed || decision.rule != *rule {
            failures.push(format!(
                "{line}\n    got {} {}: {}",
                if decision.allowed { "allow" } else { "deny" },
                decision.rule,
                decision.message
            ));
        }
        // Refusals explain themselves; allowed decisions skip the sentence (the hot path).
        assert_eq!(
            decision.message.is_empty(),
            decision.allowed,
            "row `{line}`: message `{}`",
            decision.message
        );
        rows += 1;
    }
    assert!(rows > 0, "empty table");
    assert!(
        failures.is_empty(),
        "{} of {rows} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn builtin() -> Authorizer {
    Authorizer::builtin().expect("the built-in policies load")
}

#[test]
fn builtin_matrix() {
    check(
        &builtin(),
        "
        # principal         action            resource        granted    target     expect rule

        # The instance itself may do anything, and no forbid applies to it.
        system              org.create        instance        -          -          allow  system
        system              org.approve       org:A           -          -          allow  system
        system              audit.checkpoint  instance        -          -          allow  system
        system              member.add        org:A           owner      -          allow  system
        system              token.revoke      token:A:bob     -          -          allow  system

        # Owners run their own organisation, and nothing of anyone else's.
        owner@A             org.create        instance        -          -          allow  org-create
        owner@A             org.list          instance        -          -          allow  public-directory
        owner@A             org.read          org:B           -          -          allow  public-directory
        owner@A             audit.chain_read  instance        -          -          allow  public-directory
        owner@A             org.update        org:A           -          -          allow  own-org-admin
        owner@A             org.update        org:B           -          -          deny   no-permit
        owner@A             org.approve       org:A           -          -          deny   no-permit
        owner@A             member.add        org:A           owner      -          allow  own-org-admin
        owner@A             member.add        org:B           member     -          deny   no-permit
        owner@A             member.remove     org:A           -          -          allow  own-org-admin
        owner@A             member.remove     org:B           -          -          deny   no-permit
        owner@A             member.remove     org:A           -          owner      allow  own-org-admin
        owner@A             member.add        org:A           admin      owner      allow  own-org-admin
        owner@A             token.create      org:A           owner      -          allow  own-org-admin
        owner@A             token.revoke      token:A:bob     -          -          allow  own-org-admin-revoke
        owner@A             token.revoke      token:A:alice   -          -          allow  own-org-admin-revoke
        owner@A             token.revoke      token:B:bob     -          -          deny   no-permit
        owner@A             audit.read        org:A           -          -          allow  own-org-admin
        owner@A             audit.read        org:B           -          -          deny   no-permit
        owner@A             audit.read_all    instance        -          -          deny   no-permit
        owner@A             audit.checkpoint  instance        -          -          deny   no-permit
        owner@A             event.read        org:A           -          -          allow  own-org-admin
        owner@A             event.read        org:B           -          -          deny   no-permit

        # The marketplace: anyone browses; a person shops as themselves, never through a token.
        customer            listing.read      instance        -          -          allow  market-browse
        customer            order.place       customer:alice  -          -          allow  customer-self
        customer            order.place       customer:bob    -          -          deny   no-permit
        customer            wallet.read       customer:alice  -          -          allow  customer-self
        customer            points.redeem     customer:alice  -          -          allow  customer-self
        owner@A+token       wallet.read       customer:alice  -          -          deny   no-permit
        customer            order.read        order:alice:A   -          -          allow  customer-own-order
        customer            order.read        order:bob:A     -          -          deny   no-permit
        customer            order.refund      order:alice:A   -          -          deny   no-permit
        customer            listing.manage    org:A           -          -          deny   no-permit
        # Sellers run their shop and handle the orders they sell on, and nobody else's.
        owner@A             listing.manage    org:A           -          -          allow  own-org-seller
        admin@A             payout.request    org:A           -          -          allow  own-org-seller
        admin@A             listing.manage    org:B           -          -          deny   no-permit
        member@A            listing.manage    org:A           -          -          deny   no-permit
        analyst@A           seller.read       org:A           -          -          allow  own-org-seller-analyst
        analyst@A           payout.request    org:A           -          -          deny   no-permit
        admin@A             order.fulfil      order:bob:A     -          -          allow  order-seller
        admin@A             order.refund      order:bob:B+A   -          -          allow  order-seller
        admin@A             order.fulfil      order:bob:B     -          -          deny   no-permit
        analyst@A           order.read        order:bob:A     -          -          allow  order-seller-analyst
        analyst@A           order.refund      order:bob:A     -          -          deny   no-permit
        developer@A         order.read        order:bob:A     -          -          deny   no-permit
        # Datasets stay with their owner: its owners and admins manage them, its analysts read them,
        # and nobody else (not even the operator's admins) touches them directly.
        owner@A             dataset.manage    org:A           -          -          allow  own-org-data-steward
        admin@A+token       dataset.manage    org:A           -          -          allow  own-org-data-steward
        admin@A             dataset.read      org:A           -          -          allow  own-org-data-steward
        analyst@A           dataset.read      org:A           -          -          allow  own-org-data-analyst
        analyst@A           dataset.manage    org:A           -          -          deny   no-permit
        developer@A         dataset.read      org:A           -          -          deny   no-permit
        member@A            dataset.read      org:A           -          -          deny   no-permit
        owner@A             dataset.read      org:B           -          -          deny   datasets-stay-with-their-owner
        owner@A             dataset.manage    org:B           -          -          deny   datasets-stay-with-their-owner
        owner@OP            dataset.read      org:A           -          -          deny   datasets-stay-with-their-owner
        analyst@OP          dataset.read      org:A           -          -          deny   datasets-stay-with-their-owner
        owner@OP            dataset.manage    org:OP          -          -          allow  operator-admin
        customer            dataset.read      org:A           -          -          deny   datasets-stay-with-their-owner
        # The operator sets the rules and reads the ledger; its analysts read, never write.
        admin@OP            market.operate    instance        -          -          allow  operator-admin
        admin@OP            ledger.write      instance        -          -          allow  operator-admin
        analyst@OP          ledger.read       instance        -          -          allow  operator-analyst
        analyst@OP          ledger.write      instance        -          -          deny   no-permit
        analyst@OP          order.read        order:bob:A     -          -          allow  operator-analyst
        owner@A             market.operate    instance        -          -          deny   no-permit
        owner@A             ledger.read       instance        -          -          deny   no-permit

        # Admins manage members and tokens, but only owners make, change or remove owners.
        admin@A             org.update        org:A           -          -          allow  own-org-admin
        admin@A             org.approve       org:A           -          -          deny   no-permit
        admin@A             member.add        org:A           admin      -          allow  own-org-admin
        admin@A             member.add        org:A           owner      -          deny   owners-grant-owners
        admin@A             member.add        org:B           member     -          deny   no-permit
        admin@A             member.add        org:A           member     admin      allow  own-org-admin
        admin@A             member.remove     org:A           -          analyst    allow  own-org-admin
        admin@A             member.remove     org:A           -          admin      allow  own-org-admin
        admin@A             member.remove     org:A           -          owner      deny   owners-manage-owners
        admin@A             member.add        org:A           admin      owner      deny   owners-manage-owners
        admin@A             member.add        org:A           member     owner      deny   owners-manage-owners
        # Making an owner an owner again breaks two rules; the first in file order is named.
        admin@A             member.add        org:A           owner      owner      deny   owners-grant-owners
        # A forbid is named even where no permit applies: here, another organisation's owner.
        admin@A             member.remove     org:B           -          owner      deny   owners-manage-owners
        # The target role matters to member.add and member.remove only.
        admin@A             member.list       org:A           -          owner      allow  own-org-admin
        admin@A             token.create      org:A           admin      owner      allow  own-org-admin
        admin@A             member.list       org:B           -          -          deny   no-permit
        admin@A             token.create      org:A           admin      -          allow  own-org-admin
        admin@A             token.create      org:A           owner      -          deny   no-role-escalation
        admin@A             token.list        org:A           -          -          allow  own-org-admin
        admin@A             token.revoke      token:A:bob     -          -          allow  own-org-admin-revoke
        admin@A             token.revoke      token:B:bob     -          -          deny   no-permit
        admin@A             audit.read        org:A           -          -          allow  own-org-admin

        # Analysts read their own organisation's audit log and events and make tokens with no power they lack.
        analyst@A           member.list       org:A           -          -          allow  own-org-analyst
        analyst@A           audit.read        org:A           -          -          allow  own-org-analyst
        analyst@A           audit.read        org:B           -          -          deny   no-permit
        analyst@A           event.read        org:A           -          -          allow  own-org-analyst
        analyst@A           event.read        org:B           -          -          deny   no-permit
        analyst@A           token.create      org:A           analyst    -          allow  own-org-analyst
        analyst@A           token.create      org:A           member     -          allow  own-org-analyst
        # Developer shares the analyst's rank, not its powers.
        analyst@A           token.create      org:A           developer  -          deny   no-role-escalation
        analyst@A           token.create      org:A           admin      -          deny   no-role-escalation
        analyst@A           token.create      org:B           member     -          deny   no-permit
        analyst@A           token.list        org:A           -          -          allow  own-org-analyst
        analyst@A           token.revoke      token:A:alice   -          -          allow  revoke-own-token
        analyst@A           token.revoke      token:A:bob     -          -          deny   no-permit
        analyst@A           member.add        org:A           member     -          deny   no-permit
        analyst@A           org.update        org:A           -          -          deny   no-permit
        analyst@A           audit.read_all    instance        -          -          deny   no-permit

        # Developers read events and make tokens; the audit log is not theirs.
        developer@A         member.list       org:A           -          -          allow  own-org-developer
        developer@A         member.list       org:B           -          -          deny   no-permit
        developer@A         event.read        org:A           -          -          allow  own-org-developer
        developer@A         audit.read        org:A           -          -          deny   no-permit
        developer@A         token.create      org:A           developer  -          allow  own-org-developer
        developer@A         token.create      org:A           admin      -          deny   no-role-escalation
        developer@A         token.create      org:A           member     -          allow  own-org-developer
        # An analyst token would read the audit log its developer may not.
        developer@A         token.create      org:A           analyst    -          deny   no-role-escalation
        developer@A         member.add        org:A           analyst    -          deny   no-role-escalation
        developer@A         token.list        org:A           -          -          allow  own-org-developer
        developer@A         token.revoke      token:A:bob     -          -          deny   no-permit

        # Members see who else belongs, and may drop their own tokens.
        member@A            member.list       org:A           -          -          allow  own-org-member
        member@A            member.list       org:B           -          -          deny   no-permit
        member@A            event.read        org:A           -          -          deny   no-permit
        member@A            token.create      org:A           member     -          deny   no-permit
        member@A            token.list        org:A           -          -          deny   no-permit
        member@A            token.revoke      token:A:alice   -          -          allow  revoke-own-token
        member@A            token.revoke      token:A:bob     -          -          deny   no-permit
        member@A            token.revoke      token:B:alice   -          -          deny   no-permit
        member@A            org.read          org:A           -          -          allow  public-directory
        member@A            org.create        instance        -          -          allow  org-create

        # Customers act for no organisation: the public directory and founding one, nothing else.
        customer            org.read          org:A           -          -          allow  public-directory
        customer            org.list          instance        -          -          allow  public-directory
        customer            audit.chain_read  instance        -          -          allow  public-directory
        customer            org.create        instance        -          -          allow  org-create
        customer            member.list       org:A           -          -          deny   no-permit
        customer            audit.read        org:A           -          -          deny   no-permit
        customer            event.read        org:A           -          -          deny   no-permit
        customer            token.create      org:A           member     -          deny   no-role-escalation
        customer            token.revoke      token:A:alice   -          -          deny   no-permit
        customer            audit.read_all    instance        -          -          deny   no-permit

        # The operator's owners and admins act on every organisation.
        owner@OP            org.approve       org:A           -          -          allow  operator-admin
        owner@OP            org.read          org:A           -          -          allow  operator-admin
        owner@OP            audit.read_all    instance        -          -          allow  operator-admin
        owner@OP            audit.checkpoint  instance        -          -          allow  operator-admin
        owner@OP            member.add        org:B           admin      -          allow  operator-admin
        owner@OP            member.add        org:B           owner      -          allow  operator-admin
        owner@OP            token.revoke      token:B:bob     -          -          allow  operator-admin
        admin@OP            org.approve       org:B           -          -          allow  operator-admin
        admin@OP            audit.checkpoint  instance        -          -          allow  operator-admin
        admin@OP            org.update        org:B           -          -          allow  operator-admin
        # No rule limits them: the operator's admins make, change and remove owners anywhere,
        # and grant roles they do not hold.
        admin@OP            member.add        org:B           owner      -          allow  operator-admin
        admin@OP            member.add        org:B           admin      owner      allow  operator-admin
        admin@OP            member.remove     org:B           -          owner      allow  operator-admin
        owner@OP            member.remove     org:B           -          owner      allow  operator-admin
        admin@OP            token.create      org:OP          owner      -          allow  operator-admin
        admin@OP+token      member.remove     org:B           -          owner      allow  operator-admin

        # The operator's analysts read everywhere and change nothing.
        analyst@OP          audit.read_all    instance        -          -          allow  operator-analyst
        analyst@OP          audit.read        org:B           -          -          allow  operator-analyst
        analyst@OP          audit.read        org:OP          -          -          allow  operator-analyst
        analyst@OP          member.list       org:B           -          -          allow  operator-analyst
        analyst@OP          event.read        org:B           -          -          allow  operator-analyst
        analyst@OP          org.list          instance        -          -          allow  operator-analyst
        analyst@OP          org.approve       org:B           -          -          deny   no-permit
        analyst@OP          org.update        org:B           -          -          deny   no-permit
        analyst@OP          token.list        org:B           -          -          deny   no-permit
        analyst@OP          audit.checkpoint  instance        -          -          deny   no-permit
        # The operator's exemptions are for its owners and admins only.
        analyst@OP          member.remove     org:B           -          owner      deny   owners-manage-owners
        analyst@OP          token.create      org:OP          developer  -          deny   no-role-escalation
        analyst@OP          token.create      org:OP          analyst    -          allow  own-org-analyst

        # Belonging to the operator is not a role: its developers get nothing beyond their own organisation.
        developer@OP        audit.read_all    instance        -          -          deny   no-permit
        developer@OP        event.read        org:B           -          -          deny   no-permit
        developer@OP        event.read        org:OP          -          -          allow  own-org-developer

        # Tokens act with their role in their organisation; only owner and admin tokens found organisations.
        owner@A+token       org.create        instance        -          -          allow  org-create
        admin@A+token       org.create        instance        -          -          allow  org-create
        analyst@A+token     org.create        instance        -          -          deny   no-permit
        developer@A+token   org.create        instance        -          -          deny   no-permit
        member@A+token      org.create        instance        -          -          deny   no-permit
        admin@A+token       member.add        org:A           member     -          allow  own-org-admin
        admin@A+token       member.add        org:B           member     -          deny   no-permit
        admin@A+token       member.add        org:A           owner      -          deny   owners-grant-owners
        analyst@A+token     audit.read        org:A           -          -          allow  own-org-analyst
        analyst@A+token     audit.read        org:B           -          -          deny   no-permit
        developer@A+token   token.create      org:A           developer  -          allow  own-org-developer
        developer@A+token   token.create      org:A           admin      -          deny   no-role-escalation
        developer@A+token   token.create      org:A           analyst    -          deny   no-role-escalation
        admin@A+token       member.remove     org:A           -          owner      deny   owners-manage-owners
        owner@A+token       member.remove     org:A           -          owner      allow  own-org-admin
        member@A+token      token.revoke      token:A:alice   -          -          allow  revoke-own-token
        member@A+token      token.revoke      token:A:bob     -          -          deny   no-permit
        analyst@OP+token    audit.read_all    instance        -          -          allow  operator-analyst
        owner@OP+token      org.approve       org:B           -          -          allow  operator-admin
        ",
    );
}

#[test]
fn messages_say_what_was_asked_by_whom_and_what_decided() {
    let world = World::new();
    let authorizer = builtin();
    let decide_with = |principal: &str,
                       action_name: &str,
                       resource: &str,
                       granted_role: Option<Role>,
                       target_role: Option<Role>|
     -> Decision {
        authorizer.decide(
            &world.actor(principal),
            action(action_name),
            &world.resource(resource),
            &Context {
                granted_role,
                target_role,
            },
        )
    };
    let decide = |principal: &str, action_name: &str, resource: &str, granted: Option<Role>| {
        decide_with(principal, action_name, resource, granted, None)
    };
    let (a, b) = (world.org_a, world.org_b);

    assert_eq!(
        decide("analyst@A", "member.add", "org:B", Some(Role::Member)).message,
        format!("no policy permits `member.add` on organisation {b} for role analyst of {a}")
    );
    assert_eq!(
        decide("developer@A", "token.create", "org:A", Some(Role::Admin)).message,
        "`no-role-escalation` forbids granting role admin with role developer"
    );
    assert_eq!(
        decide("developer@A", "token.create", "org:A", Some(Role::Analyst)).message,
        "`no-role-escalation` forbids granting role analyst with role developer"
    );
    assert_eq!(
        decide("customer", "token.create", "org:A", Some(Role::Member)).message,
        "`no-role-escalation` forbids granting role member with no role"
    );
    assert_eq!(
        decide("admin@A", "member.add", "org:A", Some(Role::Owner)).message,
        "`owners-grant-owners` forbids granting role owner with role admin"
    );
    assert_eq!(
        decide_with("admin@A", "member.remove", "org:A", None, Some(Role::Owner)).message,
        "`owners-manage-owners` forbids removing an owner with role admin"
    );
    assert_eq!(
        decide_with(
            "admin@A",
            "member.add",
            "org:A",
            Some(Role::Admin),
            Some(Role::Owner)
        )
        .message,
        "`owners-manage-owners` forbids changing an owner's role with role admin"
    );
    assert_eq!(
        decide_with(
            "admin@A+token",
            "member.remove",
            "org:B",
            None,
            Some(Role::Owner)
        )
        .message,
        "`owners-manage-owners` forbids removing an owner with role admin"
    );
    // An allowed decision names its rule and writes no sentence (it is the hot path).
    let allowed = decide("owner@A", "org.update", "org:A", None);
    assert_eq!(
        (allowed.rule.as_str(), allowed.message.as_str()),
        ("own-org-admin", "")
    );

    let customer = decide("customer", "audit.read", "org:A", None).message;
    assert_eq!(
        customer,
        format!(
            "no policy permits `audit.read` on organisation {a} for user {} acting for no organisation",
            world.alice
        )
    );

    let token = decide("member@A+token", "event.read", "org:A", None).message;
    assert!(
        token.starts_with(&format!(
            "no policy permits `event.read` on organisation {a} for role member of {a} (token tok_"
        )),
        "{token}"
    );

    let operator = decide("analyst@OP", "org.approve", "org:B", None).message;
    assert!(
        operator.ends_with(&format!(
            "for role analyst of the operator organisation {}",
            world.operator
        )),
        "{operator}"
    );
}

#[test]
fn builtin_policies_all_have_ids_in_file_order() {
    let authorizer = builtin();
    let ids: Vec<&str> = authorizer.rule_ids().collect();
    assert_eq!(
        ids,
        [
            "system",
            "operator-admin",
            "operator-analyst",
            "public-directory",
            "market-browse",
            "customer-self",
            "miniapp-browse",
            "customer-own-order",
            "org-create",
            "own-org-miniapps",
            "own-org-admin",
            "own-org-admin-revoke",
            "own-org-analyst",
            "own-org-developer",
            "own-org-seller",
            "own-org-seller-analyst",
            "own-org-data-steward",
            "own-org-data-analyst",
            "own-org-data-steward-protocols",
            "own-org-data-analyst-queries",
            "protocol-provider",
            "protocol-party",
            "protocol-party-analyst",
            "coalition-founders",
            "coalition-readers",
            "coalition-member-admins",
            "coalition-member-analysts",
            "coalition-stewards",
            "order-seller",
            "order-seller-analyst",
            "own-org-member",
            "revoke-own-token",
            "owners-grant-owners",
            "no-role-escalation",
            "owners-manage-owners",
            "datasets-stay-with-their-owner",
            "data-sharing-stays-with-the-parties",
            "only-the-provider-manages-a-protocol",
            "only-parties-decide-on-a-protocol",
            "coalition-decisions-stay-with-the-members",
        ]
    );
    let annotated = Authorizer::BUILTIN_POLICIES.matches("@id(\"").count();
    let statements = Authorizer::BUILTIN_POLICIES
        .lines()
        .filter(|line| line.starts_with("permit") || line.starts_with("forbid"))
        .count();
    assert_eq!(
        annotated, statements,
        "every built-in policy carries an @id"
    );
}

#[test]
fn every_action_is_declared_in_the_schema_with_its_resource_type() {
    let (schema, _) =
        cedar_policy::Schema::from_cedarschema_str(Authorizer::SCHEMA).expect("the schema parses");
    let declared: Vec<String> = schema.actions().map(ToString::to_string).collect();
    let authorizer = builtin();
    let world = World::new();
    for action in Action::ALL {
        let uid = format!("Agora::Action::\"{}\"", action.as_str());
        assert!(
            declared.contains(&uid),
            "`{action}` is not declared in the schema; declared: {declared:?}"
        );

        let resource = match action {
            Action::OrgCreate
            | Action::OrgList
            | Action::AuditChainRead
            | Action::AuditReadAll
            | Action::AuditCheckpoint
            | Action::ListingRead
            | Action::MarketOperate
            | Action::MarketReadAll
            | Action::LedgerRead
            | Action::LedgerWrite
            | Action::MiniAppBrowse
            | Action::MiniAppReview => "instance",
            Action::TokenRevoke => "token:A:bob",
            Action::OrderPlace
            | Action::WalletRead
            | Action::WalletTopUp
            | Action::PointsRead
            | Action::PointsRedeem
            | Action::MiniAppUse => "customer:alice",
            Action::OrderRead | Action::OrderFulfil | Action::OrderRefund => "order:alice:A",
            Action::ProtocolRead | Action::ProtocolManage | Action::ProtocolDecide => {
                "protocol:A:B"
            }
            Action::CoalitionCreate => "instance",
            Action::CoalitionRead
            | Action::CoalitionParticipate
            | Action::CoalitionContribute
            | Action::CoalitionSteward
            | Action::CoalitionExecute => "coalition:C:A+B:A",
            _ => "org:A",
        };
        let resource_type = match resource {
            "instance" => "Agora::Instance",
            "token:A:bob" => "Agora::Token",
            "customer:alice" => "Agora::Customer",
            "order:alice:A" => "Agora::Order",
            "protocol:A:B" => "Agora::Protocol",
            "coalition:C:A+B:A" => "Agora::Coalition",
            _ => "Agora::Organisation",
        };
        let resources: Vec<String> = schema
            .resources_for_action(&uid.parse().unwrap())
            .expect("declared")
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            resources,
            [resource_type],
            "`{action}` applies to the wrong resource type"
        );

        // Every action reaches the policies: the system may do it, and a customer is refused or allowed without error.
        let decision = authorizer.decide(
            &Actor::system(),
            action,
            &world.resource(resource),
            &Context::default(),
        );
        assert_eq!(
            (decision.allowed, decision.rule.as_str()),
            (true, "system"),
            "`{action}`: {}",
            decision.message
        );
        let decision = authorizer.decide(
            &world.actor("customer"),
            action,
            &world.resource(resource),
            &Context::default(),
        );
        assert_ne!(
            decision.rule, "policy-error",
            "`{action}`: {}",
            decision.message
        );
    }
    assert_eq!(
        declared.len(),
        Action::ALL.len(),
        "the schema declares actions Agora does not have: {declared:?}"
    );
}

#[test]
fn operator_policies_add_forbids_and_permits() {
    let operator = r#"
        // Tokens here are made by analysts and admins only.
        @id("no-developer-tokens")
        forbid (principal is Agora::User, action == Agora::Action::"token.create", resource)
        when { principal.role == "developer" };

        // Members may follow their organisation's events.
        permit (principal is Agora::User, action == Agora::Action::"event.read", resource is Agora::Organisation)
        when { principal has org && principal.org == resource && principal.role == "member" };
    "#;
    let authorizer = Authorizer::with_operator_policies("operator.cedar", operator)
        .expect("the operator policies load");
    check(
        &authorizer,
        "
        developer@A         token.create      org:A           developer  -          deny   operator:no-developer-tokens
        developer@A+token   token.create      org:A           member     -          deny   operator:no-developer-tokens
        analyst@A           token.create      org:A           analyst    -          allow  own-org-analyst
        member@A            event.read        org:A           -          -          allow  operator:policy1
        member@A            event.read        org:B           -          -          deny   no-permit
        # The built-in forbids still hold.
        developer@A         token.create      org:A           owner      -          deny   no-role-escalation
        admin@A             member.remove     org:A           -          owner      deny   owners-manage-owners
        ",
    );
}

#[test]
fn an_operator_policy_that_fails_to_evaluate_denies() {
    // Validation cannot see overflow; Cedar would skip the erroring forbid and allow.
    let operator = r#"
        @id("overflowing")
        forbid (principal is Agora::User, action == Agora::Action::"member.list", resource)
        when { principal.role_rank + 9223372036854775807 < 0 };
    "#;
    let authorizer = Authorizer::with_operator_policies("operator.cedar", operator)
        .expect("the operator policies load");
    check(
        &authorizer,
        "
        owner@A             member.list       org:A           -          -          deny   policy-error
        owner@A             member.list       org:B           -          -          deny   policy-error
        owner@A             event.read        org:A           -          -          allow  own-org-admin
        ",
    );
    let world = World::new();
    let decision = authorizer.decide(
        &world.actor("owner@A"),
        Action::MemberList,
        &world.resource("org:A"),
        &Context::default(),
    );
    assert!(
        decision.message.contains("operator:overflowing"),
        "{}",
        decision.message
    );
    assert!(
        decision.message.contains("overflow"),
        "{}",
        decision.message
    );
}

fn load_error(text: &str) -> PolicyError {
    match Authorizer::with_operator_policies("ops/extra.cedar", text) {
        Ok(_) => panic!("expected the operator policies to be refused:\n{text}"),
        Err(error) => error,
    }
}

#[test]
fn an_unknown_attribute_is_refused_at_load() {
    let error = load_error(
        r#"
        @id("sales-only")
        permit (principal is Agora::User, action == Agora::Action::"org.update", resource)
        when { principal.department == "sales" };
        "#,
    );
    let PolicyError::Invalid {
        source_name,
        policy_id,
        message,
    } = &error
    else {
        panic!("expected Invalid, got {error:?}")
    };
    assert_eq!(source_name, "ops/extra.cedar");
    assert_eq!(policy_id, "operator:sales-only");
    assert!(message.contains("department"), "{message}");
    assert!(message.starts_with("line 4, column"), "{message}");
    let text = error.to_string();
    assert!(
        text.starts_with("ops/extra.cedar: policy `operator:sales-only` is invalid: line 4"),
        "{text}"
    );
}

#[test]
fn an_unknown_entity_type_is_refused_at_load() {
    let error = load_error(r#"permit (principal in Agora::Group::"staff", action, resource);"#);
    let PolicyError::Invalid {
        source_name,
        policy_id,
        message,
    } = &error
    else {
        panic!("expected Invalid, got {error:?}")
    };
    assert_eq!(
        (source_name.as_str(), policy_id.as_str()),
        ("ops/extra.cedar", "operator:policy0")
    );
    assert!(message.contains("Agora::Group"), "{message}");
}

#[test]
fn an_unknown_action_is_refused_at_load() {
    let error = load_error(
        r#"@id("x") permit (principal, action == Agora::Action::"org.delete", resource);"#,
    );
    let text = error.to_string();
    assert!(
        text.contains("operator:x") && text.contains("org.delete"),
        "{text}"
    );
}

#[test]
fn reading_attributes_of_entities_a_request_does_not_carry_is_refused_at_load() {
    // A request carries the principal and the token, not the token's owner.
    let error = load_error(
        r#"
        @id("owner-tokens")
        permit (principal is Agora::User, action == Agora::Action::"token.revoke", resource is Agora::Token)
        when { resource.owner.role == "owner" };
        "#,
    );
    let PolicyError::Invalid { policy_id, .. } = &error else {
        panic!("expected Invalid, got {error:?}")
    };
    assert_eq!(policy_id, "operator:owner-tokens");
}

#[test]
fn an_optional_attribute_without_a_has_guard_is_refused_at_load() {
    let error = load_error(
        r#"
        @id("unguarded")
        permit (principal is Agora::User, action == Agora::Action::"event.read", resource is Agora::Organisation)
        when { principal.org == resource };
        "#,
    );
    let text = error.to_string();
    assert!(
        text.contains("operator:unguarded") && text.contains("org"),
        "{text}"
    );
}

#[test]
fn a_syntax_error_is_refused_with_its_place() {
    let error = load_error(
        "@id(\"fine\")\npermit (principal, action, resource);\n\npermit (principal, action resource);\n",
    );
    let PolicyError::Parse {
        source_name,
        message,
    } = &error
    else {
        panic!("expected Parse, got {error:?}")
    };
    assert_eq!(source_name, "ops/extra.cedar");
    assert!(message.starts_with("line 4, column"), "{message}");
    assert!(
        error
            .to_string()
            .starts_with("ops/extra.cedar: cannot parse policies: line 4"),
        "{error}"
    );
}

#[test]
fn duplicate_ids_and_templates_are_refused() {
    let error = load_error(
        r#"
        @id("twice") permit (principal, action == Agora::Action::"org.read", resource);
        @id("twice") permit (principal, action == Agora::Action::"org.list", resource);
        "#,
    );
    let PolicyError::Invalid {
        policy_id, message, ..
    } = &error
    else {
        panic!("expected Invalid, got {error:?}")
    };
    assert_eq!(policy_id, "operator:twice");
    assert!(message.contains("unique"), "{message}");

    let error = load_error(r#"@id("slot") permit (principal == ?principal, action, resource);"#);
    let PolicyError::Invalid {
        policy_id, message, ..
    } = &error
    else {
        panic!("expected Invalid, got {error:?}")
    };
    assert_eq!(policy_id, "operator:slot");
    assert!(message.contains("template"), "{message}");
}

#[test]
fn an_empty_operator_file_is_the_builtin_set() {
    let authorizer =
        Authorizer::with_operator_policies("empty.cedar", "// nothing yet\n").expect("loads");
    assert_eq!(authorizer.rule_ids().count(), builtin().rule_ids().count());
}

#[test]
fn the_authorizer_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authorizer>();
}

/// The built-in matrix restated as plain Rust, the reference model for [`builtin_policies_match_the_model`]:
/// `Ok` when allowed, otherwise the rule that denies: the first forbid in file order that applies, or `no-permit`.
fn model(
    actor: &Actor,
    action: Action,
    resource: &Resource,
    context: &Context,
) -> Result<(), &'static str> {
    use Action::*;
    if actor.is_system() {
        return Ok(());
    }
    let role = actor.acting.map(|acting| acting.role);
    let operator = actor.acting.is_some_and(|acting| acting.is_operator);
    let operator_admin = operator && matches!(role, Some(Role::Owner | Role::Admin));
    let via_token = matches!(actor.credential, Credential::Token(_));
    // Owners, and the operator's owners and admins, make, change and remove owners.
    let manages_owners = role == Some(Role::Owner) || (operator && role == Some(Role::Admin));

    // The forbids, in file order.
    if action == MemberAdd && context.granted_role == Some(Role::Owner) && !manages_owners {
        return Err("owners-grant-owners");
    }
    if let Some(granted) = context.granted_role
        && matches!(action, TokenCreate | MemberAdd)
        && !role.is_some_and(|role| role.covers(granted))
        && !operator_admin
    {
        return Err("no-role-escalation");
    }
    if matches!(action, MemberAdd | MemberRemove)
        && context.target_role == Some(Role::Owner)
        && !manages_owners
    {
        return Err("owners-manage-owners");
    }
    if matches!(action, DatasetManage | DatasetRead) {
        let own = match resource {
            Resource::Organisation(org_id) => {
                actor.acting.is_some_and(|acting| acting.org_id == *org_id)
            }
            _ => false,
        };
        if !own {
            return Err("datasets-stay-with-their-owner");
        }
    }

    let acting_org = actor.acting.map(|acting| acting.org_id);
    if matches!(action, ProtocolCreate | QueryRun | QueryRead)
        && !matches!(resource, Resource::Organisation(org_id) if Some(*org_id) == acting_org)
    {
        return Err("data-sharing-stays-with-the-parties");
    }
    if action == ProtocolManage
        && !matches!(resource, Resource::Protocol { provider, .. } if Some(*provider) == acting_org)
    {
        return Err("only-the-provider-manages-a-protocol");
    }
    if action == ProtocolDecide
        && !matches!(resource, Resource::Protocol { parties, .. } if acting_org.is_some_and(|org| parties.contains(&org)))
    {
        return Err("only-parties-decide-on-a-protocol");
    }

    if matches!(
        action,
        CoalitionParticipate | CoalitionContribute | CoalitionSteward | CoalitionExecute
    ) && !matches!(resource, Resource::Coalition { members, .. } if acting_org.is_some_and(|org| members.contains(&org)))
    {
        return Err("coalition-decisions-stay-with-the-members");
    }

    if permitted(actor, action, resource, operator_admin, via_token) {
        Ok(())
    } else {
        Err("no-permit")
    }
}

/// Whether some built-in permit applies, forbids aside.
fn permitted(
    actor: &Actor,
    action: Action,
    resource: &Resource,
    operator_admin: bool,
    via_token: bool,
) -> bool {
    use Action::*;
    let role = actor.acting.map(|acting| acting.role);
    let operator = actor.acting.is_some_and(|acting| acting.is_operator);
    if operator_admin {
        return true;
    }
    if operator
        && role == Some(Role::Analyst)
        && matches!(
            action,
            AuditReadAll
                | AuditRead
                | OrgRead
                | OrgList
                | MemberList
                | EventRead
                | MarketReadAll
                | LedgerRead
                | OrderRead
                | SellerRead
                | SettlementRead
                | WalletRead
                | PointsRead
        )
    {
        return true;
    }
    if matches!(action, OrgRead | OrgList | AuditChainRead) {
        return true;
    }

    if action == OrgCreate {
        return !via_token || matches!(role, Some(Role::Owner | Role::Admin));
    }
    if matches!(action, ListingRead | MiniAppBrowse) && *resource == Resource::Instance {
        return true;
    }
    // A person's own purse and orders, never through a token.
    match resource {
        Resource::Customer(user_id) => {
            return !via_token
                && actor.user_id == Some(*user_id)
                && matches!(
                    action,
                    OrderPlace | WalletRead | WalletTopUp | PointsRead | PointsRedeem | MiniAppUse
                );
        }
        Resource::Order { customer, .. }
            if action == OrderRead && !via_token && actor.user_id == Some(*customer) =>
        {
            return true;
        }
        _ => {}
    }

    let Some(acting) = actor.acting else {
        return false;
    };
    match resource {
        Resource::Instance => {
            action == CoalitionCreate && matches!(acting.role, Role::Owner | Role::Admin)
        }
        Resource::Organisation(org_id) if *org_id != acting.org_id => false,
        Resource::Organisation(_)
            if action == MiniAppManage
                && matches!(acting.role, Role::Owner | Role::Admin | Role::Developer) =>
        {
            true
        }
        Resource::Organisation(_) => match acting.role {
            Role::Owner | Role::Admin => {
                matches!(
                    action,
                    OrgUpdate
                        | MemberList
                        | MemberAdd
                        | MemberRemove
                        | TokenCreate
                        | TokenList
                        | AuditRead
                        | EventRead
                        | ListingManage
                        | SellerRead
                        | PayoutRequest
                        | SettlementRecord
                        | SettlementRead
                        | PointsGrant
                        | DatasetManage
                        | DatasetRead
                        | ProtocolCreate
                        | QueryRun
                        | QueryRead
                )
            }
            Role::Analyst => matches!(
                action,
                MemberList
                    | AuditRead
                    | EventRead
                    | TokenCreate
                    | TokenList
                    | SellerRead
                    | SettlementRead
                    | DatasetRead
                    | QueryRun
                    | QueryRead
            ),
            Role::Developer => matches!(action, MemberList | EventRead | TokenCreate | TokenList),
            Role::Member => action == MemberList,
        },
        Resource::Token { org_id, owner, .. } => {
            action == TokenRevoke
                && *org_id == acting.org_id
                && (matches!(acting.role, Role::Owner | Role::Admin)
                    || actor.user_id == Some(*owner))
        }
        Resource::Customer(_) => false,
        Resource::Order { sellers, .. } => {
            sellers.contains(&acting.org_id)
                && match acting.role {
                    Role::Owner | Role::Admin => {
                        matches!(action, OrderRead | OrderFulfil | OrderRefund)
                    }
                    Role::Analyst => action == OrderRead,
                    Role::Developer | Role::Member => false,
                }
        }
        Resource::Protocol {
            provider, parties, ..
        } => match acting.role {
            Role::Owner | Role::Admin => match action {
                ProtocolManage => *provider == acting.org_id,
                ProtocolRead | ProtocolDecide => parties.contains(&acting.org_id),
                _ => false,
            },
            Role::Analyst => action == ProtocolRead && parties.contains(&acting.org_id),
            Role::Developer | Role::Member => false,
        },
        Resource::Coalition {
            members, stewards, ..
        } => {
            let member = members.contains(&acting.org_id);
            let admin = matches!(acting.role, Role::Owner | Role::Admin);
            match action {
                CoalitionRead => true,
                CoalitionParticipate | CoalitionExecute => member && admin,
                CoalitionContribute => member && (admin || acting.role == Role::Analyst),
                CoalitionSteward => stewards.contains(&acting.org_id) && admin,
                _ => false,
            }
        }
    }
}

#[test]
fn builtin_policies_match_the_model() {
    let world = World::new();
    let authorizer = builtin();
    let mut principals = vec!["system".to_owned(), "customer".to_owned()];
    for role in Role::ALL {
        for org in ["A", "OP"] {
            principals.push(format!("{role}@{org}"));
            principals.push(format!("{role}@{org}+token"));
        }
    }
    let resources = [
        "instance",
        "org:A",
        "org:B",
        "org:OP",
        "token:A:alice",
        "token:A:bob",
        "token:B:alice",
        "token:OP:bob",
        "customer:alice",
        "customer:bob",
        "order:alice:A",
        "order:bob:A",
        "order:bob:B+OP",
        "order:bob:-",
        "protocol:A:B",
        "protocol:B:A",
        "protocol:B:OP",
        "protocol:OP:-",
        "coalition:C:A+B:A",
        "coalition:C:B:B",
        "coalition:C:A+OP:OP",
    ];
    // Every granted role and every target role, each also absent, in every combination.
    let roles: Vec<Option<Role>> = std::iter::once(None).chain(Role::ALL.map(Some)).collect();
    let contexts: Vec<Context> = roles
        .iter()
        .flat_map(|&granted_role| {
            roles.iter().map(move |&target_role| Context {
                granted_role,
                target_role,
            })
        })
        .collect();

    let mut mismatches = Vec::new();
    let mut decisions = 0;
    for principal in &principals {
        let actor = world.actor(principal);
        for action in Action::ALL {
            for resource_spec in resources {
                let resource = world.resource(resource_spec);
                for context in &contexts {
                    let decision = authorizer.decide(&actor, action, &resource, context);
                    let expected = model(&actor, action, &resource, context);
                    let got = if decision.allowed {
                        Ok(())
                    } else {
                        Err(decision.rule.as_str())
                    };
                    decisions += 1;
                    if got != expected {
                        mismatches.push(format!(
                            "{principal} {action} {resource_spec} {context:?}: model {expected:?}, got {decision:?}"
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(
        decisions,
        principals.len() * Action::ALL.len() * resources.len() * contexts.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {decisions} decisions differ from the model:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
