//! Every authorization decision in Agora, made by Cedar against the built-in and operator policies.
//!
//! An [`Authorizer`] is built once at start-up: it parses the schema (`policies/agora.cedarschema`),
//! the built-in policies (`policies/builtin.cedar`) and the operator's own policies, and validates
//! them all against the schema in strict mode, so a policy that names an unknown attribute, entity
//! type or action is refused before the instance serves a single request.
//!
//! [`Authorizer::decide`] then turns an [`Actor`], an [`Action`], a [`Resource`] and a [`Context`]
//! into a Cedar request and answers with a [`Decision`] that names the rule that decided.
//! Requests and entities are built directly from the domain types and are not validated against
//! the schema per request: the domain types can only produce well-typed requests, and the
//! policies were validated at load.
//!
//! Each request carries only two entities: the principal and, for a token, the resource. Policies
//! are therefore validated with a dereference level of 1: `principal.org` and `resource.owner`
//! may be compared, but the attributes of the entities they point to cannot be read.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::{Actor, Credential, Role};
use cedar_policy as cedar;
use miette::Diagnostic;

/// How far policies may follow entity references; see the crate documentation.
const DEREF_LEVEL_MAX: u32 = 1;

const SCHEMA_SOURCE: &str = "agora.cedarschema";
const BUILTIN_SOURCE: &str = "builtin.cedar";
const OPERATOR_PREFIX: &str = "operator:";

/// The rule a [`Decision`] names when no policy permits the request.
pub const RULE_NO_PERMIT: &str = "no-permit";
/// The rule a [`Decision`] names when a policy failed to evaluate: the request is denied.
pub const RULE_POLICY_ERROR: &str = "policy-error";

/// Why a set of policies was refused at load.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The schema itself does not parse or does not declare every action. A bug in this crate.
    #[error("{source_name}: {message}")]
    Schema {
        source_name: String,
        message: String,
    },
    /// A policy file is not valid Cedar.
    #[error("{source_name}: cannot parse policies: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    /// A policy parses but does not fit the schema, or breaks one of Agora's rules for policy files.
    #[error("{source_name}: policy `{policy_id}` is invalid: {message}")]
    Invalid {
        source_name: String,
        policy_id: String,
        message: String,
    },
}

/// The answer to one authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// On allow, the id of a permit policy that applied; on a forbid, that forbid's id;
    /// otherwise [`RULE_NO_PERMIT`] or [`RULE_POLICY_ERROR`].
    pub rule: String,
    /// For refusals, a sentence for people: what was asked, by whom, and what refused it.
    /// Empty when allowed.
    pub message: String,
}

/// Cedar entity type names and uids that every request reuses.
struct Names {
    user: cedar::EntityTypeName,
    organisation: cedar::EntityTypeName,
    token: cedar::EntityTypeName,
    customer: cedar::EntityTypeName,
    order: cedar::EntityTypeName,
    protocol: cedar::EntityTypeName,
    coalition: cedar::EntityTypeName,
    system: cedar::EntityUid,
    instance: cedar::EntityUid,
    /// Indexed like [`Action::ALL`].
    actions: Vec<cedar::EntityUid>,
}

impl Names {
    fn new() -> Self {
        let type_name = |name: &str| {
            cedar::EntityTypeName::from_str(name)
                .expect("the entity type names here are valid Cedar names")
        };
        let uid = |type_name: cedar::EntityTypeName, id: &str| {
            cedar::EntityUid::from_type_name_and_id(type_name, cedar::EntityId::new(id))
        };
        let action_type = type_name("Agora::Action");
        Self {
            user: type_name("Agora::User"),
            organisation: type_name("Agora::Organisation"),
            token: type_name("Agora::Token"),
            customer: type_name("Agora::Customer"),
            order: type_name("Agora::Order"),
            protocol: type_name("Agora::Protocol"),
            coalition: type_name("Agora::Coalition"),
            system: uid(type_name("Agora::System"), "instance"),
            instance: uid(type_name("Agora::Instance"), "instance"),
            actions: Action::ALL
                .iter()
                .map(|action| uid(action_type.clone(), action.as_str()))
                .collect(),
        }
    }

    fn action(&self, action: Action) -> &cedar::EntityUid {
        &self.actions[action_index(action)]
    }

    fn organisation(&self, org_id: impl ToString) -> cedar::EntityUid {
        cedar::EntityUid::from_type_name_and_id(
            self.organisation.clone(),
            cedar::EntityId::new(org_id.to_string()),
        )
    }

    fn user(&self, user_id: impl ToString) -> cedar::EntityUid {
        cedar::EntityUid::from_type_name_and_id(
            self.user.clone(),
            cedar::EntityId::new(user_id.to_string()),
        )
    }
}

/// Decides every request against the built-in and operator policies. Cheap to share behind an `Arc`.
pub struct Authorizer {
    engine: cedar::Authorizer,
    /// The policies that can apply to each action and kind of principal, indexed by [`slice_index`]:
    /// Cedar evaluates every policy it is given, so each request sees only its own slice.
    slices: Vec<cedar::PolicySet>,
    /// Position of each policy in its file (built-in first), to name the first that applied.
    order: HashMap<cedar::PolicyId, usize>,
    names: Names,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("rules", &self.rule_ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// The Cedar schema every policy is validated against.
    pub const SCHEMA: &str = include_str!("../policies/agora.cedarschema");
    /// The built-in policies, always loaded first.
    pub const BUILTIN_POLICIES: &str = include_str!("../policies/builtin.cedar");

    /// The built-in policies alone.
    pub fn builtin() -> Result<Self, PolicyError> {
        Self::load(None)
    }

    /// The built-in policies plus the operator's own, read from `source_name`.
    ///
    /// Operator policy ids are `operator:` followed by the policy's `@id` annotation, or by
    /// `policyN` (its position in the file, from 0) when it has none.
    pub fn with_operator_policies(source_name: &str, text: &str) -> Result<Self, PolicyError> {
        Self::load(Some((source_name, text)))
    }

    /// Policy ids in evaluation-report order: built-in first, then the operator's, each in file order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        let mut ids: Vec<(&cedar::PolicyId, usize)> =
            self.order.iter().map(|(id, index)| (id, *index)).collect();
        ids.sort_by_key(|(_, index)| *index);
        ids.into_iter().map(|(id, _)| id.as_ref())
    }

    fn load(operator: Option<(&str, &str)>) -> Result<Self, PolicyError> {
        let (schema, _warnings) =
            cedar::Schema::from_cedarschema_str(Self::SCHEMA).map_err(|error| {
                PolicyError::Schema {
                    source_name: SCHEMA_SOURCE.to_owned(),
                    message: describe(&error, Self::SCHEMA),
                }
            })?;
        let declared: Vec<&cedar::EntityUid> = schema.actions().collect();
        let names = Names::new();
        if let Some(missing) = Action::ALL
            .iter()
            .zip(&names.actions)
            .find(|(_, uid)| !declared.contains(uid))
        {
            return Err(PolicyError::Schema {
                source_name: SCHEMA_SOURCE.to_owned(),
                message: format!("action `{}` is not declared", missing.0),
            });
        }

        let mut policies = cedar::PolicySet::new();
        let mut order = HashMap::new();
        add_policies(
            &mut policies,
            &mut order,
            BUILTIN_SOURCE,
            Self::BUILTIN_POLICIES,
            None,
        )?;
        if let Some((source_name, text)) = operator {
            add_policies(
                &mut policies,
                &mut order,
                source_name,
                text,
                Some(OPERATOR_PREFIX),
            )?;
        }

        let validation = cedar::Validator::new(schema).validate_with_level(
            &policies,
            cedar::ValidationMode::Strict,
            DEREF_LEVEL_MAX,
        );
        let mut errors = validation.validation_errors();
        if let Some(first) = errors.next() {
            let others = errors.count();
            let policy_id = first.policy_id().to_string();
            let (source_name, text) = match operator {
                Some(source) if policy_id.starts_with(OPERATOR_PREFIX) => source,
                _ => (BUILTIN_SOURCE, Self::BUILTIN_POLICIES),
            };
            let mut message = describe(first, text);
            if others > 0 {
                let _ = write!(
                    message,
                    " (and {others} more problem{})",
                    if others == 1 { "" } else { "s" }
                );
            }
            return Err(PolicyError::Invalid {
                source_name: source_name.to_owned(),
                policy_id,
                message,
            });
        }

        let principal_types = [&names.user, names.system.type_name()];
        let mut slices = vec![cedar::PolicySet::new(); Action::ALL.len() * principal_types.len()];
        for (action_index, action) in names.actions.iter().enumerate() {
            for (principal_index, principal_type) in principal_types.iter().enumerate() {
                let slice = &mut slices[slice_index(action_index, principal_index == 1)];
                for policy in policies
                    .policies()
                    .filter(|policy| may_apply(policy, action, principal_type))
                {
                    slice
                        .add(policy.clone())
                        .expect("policy ids are unique: `add_policies` refuses duplicates");
                }
            }
        }

        Ok(Self {
            engine: cedar::Authorizer::new(),
            slices,
            order,
            names,
        })
    }

    /// Decides whether `actor` may do `action` on `resource`. Never panics: a policy that fails
    /// to evaluate denies the request with rule [`RULE_POLICY_ERROR`].
    pub fn decide(
        &self,
        actor: &Actor,
        action: Action,
        resource: &Resource,
        context: &Context,
    ) -> Decision {
        let (request, entities) = match self.request(actor, action, resource, context) {
            Ok(built) => built,
            Err(message) => {
                return Decision {
                    allowed: false,
                    rule: RULE_POLICY_ERROR.to_owned(),
                    message: format!(
                        "`{action}` on {} is denied: the request cannot be built: {message}",
                        describe_resource(resource)
                    ),
                };
            }
        };
        let slice = &self.slices[slice_index(action_index(action), actor.is_system())];
        let response = self.engine.is_authorized(&request, slice, &entities);
        let diagnostics = response.diagnostics();
        let first = diagnostics
            .reason()
            .min_by_key(|id| self.order.get(*id).copied().unwrap_or(usize::MAX));
        let forbidden = response.decision() == cedar::Decision::Deny && first.is_some();

        if !forbidden && let Some(error) = diagnostics.errors().next() {
            // An erroring forbid is skipped by Cedar, which could let a request through: fail closed.
            let (policy, error) = match error {
                cedar::AuthorizationError::PolicyEvaluationError(error) => {
                    (error.policy_id(), error.inner())
                }
            };
            return Decision {
                allowed: false,
                rule: RULE_POLICY_ERROR.to_owned(),
                message: format!(
                    "policy `{policy}` could not be evaluated, so `{action}` on {} for {} is denied: {error}",
                    describe_resource(resource),
                    describe_actor(actor)
                ),
            };
        }

        match (response.decision(), first) {
            // Nobody reads why something was allowed, and this is every request's hot path:
            // the sentence is written only for refusals.
            (cedar::Decision::Allow, Some(rule)) => Decision {
                allowed: true,
                rule: rule.to_string(),
                message: String::new(),
            },
            (cedar::Decision::Deny, Some(rule)) => {
                let with_role = || {
                    actor.acting.map_or_else(
                        || "no role".to_owned(),
                        |acting| format!("role {}", acting.role),
                    )
                };
                let message = match (rule.as_ref(), context.granted_role, context.target_role) {
                    ("no-role-escalation" | "owners-grant-owners", Some(granted), _) => {
                        format!(
                            "`{rule}` forbids granting role {granted} with {}",
                            with_role()
                        )
                    }
                    ("owners-manage-owners", _, Some(Role::Owner)) => {
                        let what = if action == Action::MemberRemove {
                            "removing an owner"
                        } else {
                            "changing an owner's role"
                        };
                        format!("`{rule}` forbids {what} with {}", with_role())
                    }
                    _ => format!(
                        "`{rule}` forbids `{action}` on {} for {}",
                        describe_resource(resource),
                        describe_actor(actor)
                    ),
                };
                Decision {
                    allowed: false,
                    rule: rule.to_string(),
                    message,
                }
            }
            // Cedar never allows without a reason; if it ever did, refusing is the safe reading.
            (_, None) => Decision {
                allowed: false,
                rule: RULE_NO_PERMIT.to_owned(),
                message: format!(
                    "no policy permits `{action}` on {} for {}",
                    describe_resource(resource),
                    describe_actor(actor)
                ),
            },
        }
    }

    /// The Cedar request and the entities it needs: the principal, and the token when the resource is one.
    fn request(
        &self,
        actor: &Actor,
        action: Action,
        resource: &Resource,
        context: &Context,
    ) -> Result<(cedar::Request, cedar::Entities), String> {
        let mut entities = Vec::with_capacity(2);

        let principal = if actor.is_system() {
            self.names.system.clone()
        } else {
            let id = match actor.user_id {
                Some(user_id) => user_id.to_string(),
                None => actor.credential.describe(),
            };
            let uid = cedar::EntityUid::from_type_name_and_id(
                self.names.user.clone(),
                cedar::EntityId::new(id),
            );
            let (role, rank) = actor.acting.map_or(("", 0), |acting| {
                (acting.role.as_str(), i64::from(acting.role.rank()))
            });
            let mut attrs = Vec::with_capacity(5);
            attrs.push((
                "role".to_owned(),
                cedar::RestrictedExpression::new_string(role.to_owned()),
            ));
            attrs.push((
                "role_rank".to_owned(),
                cedar::RestrictedExpression::new_long(rank),
            ));
            attrs.push((
                "operator".to_owned(),
                cedar::RestrictedExpression::new_bool(
                    actor.acting.is_some_and(|acting| acting.is_operator),
                ),
            ));
            attrs.push((
                "via_token".to_owned(),
                cedar::RestrictedExpression::new_bool(matches!(
                    actor.credential,
                    Credential::Token(_)
                )),
            ));
            if let Some(acting) = actor.acting {
                attrs.push((
                    "org".to_owned(),
                    cedar::RestrictedExpression::new_entity_uid(
                        self.names.organisation(acting.org_id),
                    ),
                ));
            }
            entities.push(
                cedar::Entity::new_with_tags(uid.clone(), attrs, [], [])
                    .map_err(|error| error.to_string())?,
            );
            uid
        };

        let resource = match resource {
            Resource::Instance => self.names.instance.clone(),
            Resource::Organisation(org_id) => self.names.organisation(org_id),
            Resource::Token { id, org_id, owner } => {
                let uid = cedar::EntityUid::from_type_name_and_id(
                    self.names.token.clone(),
                    cedar::EntityId::new(id.to_string()),
                );
                let owner = cedar::EntityUid::from_type_name_and_id(
                    self.names.user.clone(),
                    cedar::EntityId::new(owner.to_string()),
                );
                let attrs = [
                    (
                        "org".to_owned(),
                        cedar::RestrictedExpression::new_entity_uid(
                            self.names.organisation(org_id),
                        ),
                    ),
                    (
                        "owner".to_owned(),
                        cedar::RestrictedExpression::new_entity_uid(owner),
                    ),
                ];
                entities.push(
                    cedar::Entity::new_with_tags(uid.clone(), attrs, [], [])
                        .map_err(|error| error.to_string())?,
                );
                uid
            }
            Resource::Customer(user_id) => {
                let uid = cedar::EntityUid::from_type_name_and_id(
                    self.names.customer.clone(),
                    cedar::EntityId::new(user_id.to_string()),
                );
                let attrs = [(
                    "user".to_owned(),
                    cedar::RestrictedExpression::new_entity_uid(self.names.user(user_id)),
                )];
                entities.push(
                    cedar::Entity::new_with_tags(uid.clone(), attrs, [], [])
                        .map_err(|error| error.to_string())?,
                );
                uid
            }
            Resource::Order {
                id,
                customer,
                sellers,
            } => {
                let uid = cedar::EntityUid::from_type_name_and_id(
                    self.names.order.clone(),
                    cedar::EntityId::new(id.to_string()),
                );
                let sellers = sellers.iter().map(|seller| {
                    cedar::RestrictedExpression::new_entity_uid(self.names.organisation(seller))
                });
                let attrs = [
                    (
                        "customer".to_owned(),
                        cedar::RestrictedExpression::new_entity_uid(self.names.user(customer)),
                    ),
                    (
                        "sellers".to_owned(),
                        cedar::RestrictedExpression::new_set(sellers),
                    ),
                ];
                entities.push(
                    cedar::Entity::new_with_tags(uid.clone(), attrs, [], [])
                        .map_err(|error| error.to_string())?,
                );
                uid
            }
            Resource::Protocol {
                id,
                provider,
                parties,
            } => {
                let uid = cedar::EntityUid::from_type_name_and_id(
                    self.names.protocol.clone(),
                    cedar::EntityId::new(id.to_string()),
                );
                let parties = parties.iter().map(|party| {
                    cedar::RestrictedExpression::new_entity_uid(self.names.organisation(party))
                });
                let attrs = [
                    (
                        "provider".to_owned(),
                        cedar::RestrictedExpression::new_entity_uid(
                            self.names.organisation(provider),
                        ),
                    ),
                    (
                        "parties".to_owned(),
                        cedar::RestrictedExpression::new_set(parties),
                    ),
                ];
                entities.push(
                    cedar::Entity::new_with_tags(uid.clone(), attrs, [], [])
                        .map_err(|error| error.to_string())?,
                );
                uid
            }
            Resource::Coalition {
                id,
                members,
                stewards,
            } => {
                let uid = cedar::EntityUid::from_type_name_and_id(
                    self.names.coalition.clone(),
                    cedar::EntityId::new(id.to_string()),
                );
                let set = |orgs: &[agora_domain::OrgId]| {
                    cedar::RestrictedExpression::new_set(orgs.iter().map(|org| {
                        cedar::RestrictedExpression::new_entity_uid(self.names.organisation(org))
                    }))
                };
                let attrs = [
                    ("members".to_owned(), set(members)),
                    ("stewards".to_owned(), set(stewards)),
                ];
                entities.push(
                    cedar::Entity::new_with_tags(uid.clone(), attrs, [], [])
                        .map_err(|error| error.to_string())?,
                );
                uid
            }
        };

        let mut pairs = Vec::with_capacity(3);
        if let Some(granted) = context.granted_role {
            pairs.push((
                "granted_role".to_owned(),
                cedar::RestrictedExpression::new_string(granted.as_str().to_owned()),
            ));
            pairs.push((
                "granted_role_rank".to_owned(),
                cedar::RestrictedExpression::new_long(i64::from(granted.rank())),
            ));
        }
        if let Some(target) = context.target_role {
            pairs.push((
                "target_role".to_owned(),
                cedar::RestrictedExpression::new_string(target.as_str().to_owned()),
            ));
        }
        let context = if pairs.is_empty() {
            cedar::Context::empty()
        } else {
            cedar::Context::from_pairs(pairs).map_err(|error| error.to_string())?
        };

        let request = cedar::Request::new(
            principal,
            self.names.action(action).clone(),
            resource,
            context,
            None,
        )
        .map_err(|error| error.to_string())?;
        let entities =
            cedar::Entities::from_entities(entities, None).map_err(|error| error.to_string())?;
        Ok((request, entities))
    }
}

/// Position of `action` in [`Action::ALL`].
fn action_index(action: Action) -> usize {
    Action::ALL
        .iter()
        .position(|candidate| *candidate == action)
        .expect("Action::ALL lists every action")
}

fn slice_index(action_index: usize, system: bool) -> usize {
    action_index * 2 + usize::from(system)
}

/// Whether `policy`'s scope can hold for `action` and a principal of `principal_type`.
///
/// Exact, not a heuristic: the scope is the first conjunct Cedar evaluates, so a policy whose
/// scope cannot hold is never satisfied and never errors. Requests carry no entity parents and
/// the schema declares no action groups, so `in` on actions is membership of the listed uids.
/// Principal `in` constraints are kept whatever their type, to stay on the safe side.
fn may_apply(
    policy: &cedar::Policy,
    action: &cedar::EntityUid,
    principal_type: &cedar::EntityTypeName,
) -> bool {
    let action_may = match policy.action_constraint() {
        cedar::ActionConstraint::Any => true,
        cedar::ActionConstraint::Eq(uid) => uid == *action,
        cedar::ActionConstraint::In(uids) => uids.contains(action),
    };
    let principal_may = match policy.principal_constraint() {
        cedar::PrincipalConstraint::Any | cedar::PrincipalConstraint::In(_) => true,
        cedar::PrincipalConstraint::Eq(uid) => uid.type_name() == principal_type,
        cedar::PrincipalConstraint::Is(type_name)
        | cedar::PrincipalConstraint::IsIn(type_name, _) => type_name == *principal_type,
    };
    action_may && principal_may
}

/// Parses `text` and adds its policies to `policies`, renamed after their `@id` annotation.
fn add_policies(
    policies: &mut cedar::PolicySet,
    order: &mut HashMap<cedar::PolicyId, usize>,
    source_name: &str,
    text: &str,
    prefix: Option<&str>,
) -> Result<(), PolicyError> {
    let parsed = cedar::PolicySet::from_str(text).map_err(|errors| {
        let mut message = errors
            .iter()
            .next()
            .map_or_else(|| errors.to_string(), |first| describe(first, text));
        let others = errors.iter().count().saturating_sub(1);
        if others > 0 {
            let _ = write!(
                message,
                " (and {others} more problem{})",
                if others == 1 { "" } else { "s" }
            );
        }
        PolicyError::Parse {
            source_name: source_name.to_owned(),
            message,
        }
    })?;

    let rule_id = |annotation: Option<&str>, cedar_id: &cedar::PolicyId| match (annotation, prefix)
    {
        (Some(id), Some(prefix)) => Some(format!("{prefix}{id}")),
        (Some(id), None) => Some(id.to_owned()),
        (None, Some(prefix)) => Some(format!("{prefix}{cedar_id}")),
        (None, None) => None,
    };

    if let Some(template) = parsed.templates().next() {
        return Err(PolicyError::Invalid {
            source_name: source_name.to_owned(),
            policy_id: rule_id(template.annotation("id"), template.id()).unwrap_or_else(|| template.id().to_string()),
            message: "templates (policies with `?principal` or `?resource`) are not supported; write a static policy".to_owned(),
        });
    }

    // `PolicySet::from_str` names policies `policy0`, `policy1`, ... in file order.
    let mut parsed: Vec<&cedar::Policy> = parsed.policies().collect();
    parsed.sort_by_key(|policy| {
        policy
            .id()
            .to_string()
            .trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });

    for policy in parsed {
        let Some(id) = rule_id(policy.annotation("id"), policy.id()) else {
            return Err(PolicyError::Invalid {
                source_name: source_name.to_owned(),
                policy_id: policy.id().to_string(),
                message: "every built-in policy needs an `@id`".to_owned(),
            });
        };
        let id = cedar::PolicyId::new(id);
        if order.contains_key(&id) {
            return Err(PolicyError::Invalid {
                source_name: source_name.to_owned(),
                policy_id: id.to_string(),
                message: "this id is used by an earlier policy; every `@id` must be unique"
                    .to_owned(),
            });
        }
        order.insert(id.clone(), order.len());
        policies
            .add(policy.new_id(id.clone()))
            .map_err(|error| PolicyError::Invalid {
                source_name: source_name.to_owned(),
                policy_id: id.to_string(),
                message: error.to_string(),
            })?;
    }
    Ok(())
}

/// A Cedar diagnostic as one line: where in `text`, what, and Cedar's hint if it has one.
fn describe(diagnostic: &(impl Diagnostic + ?Sized), text: &str) -> String {
    let mut message = String::new();
    if let Some(offset) = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset())
    {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map_or(0, |line| line.chars().count())
            + 1;
        let _ = write!(message, "line {line}, column {column}: ");
    }
    let _ = write!(message, "{diagnostic}");
    if let Some(help) = diagnostic.help() {
        let _ = write!(message, " (help: {help})");
    }
    message
}

fn describe_resource(resource: &Resource) -> String {
    match resource {
        Resource::Instance => "the instance".to_owned(),
        Resource::Organisation(org_id) => format!("organisation {org_id}"),
        Resource::Token { id, org_id, .. } => format!("token {id} of {org_id}"),
        Resource::Customer(user_id) => format!("customer {user_id}"),
        Resource::Order { id, .. } => format!("order {id}"),
        Resource::Protocol { id, .. } => format!("protocol {id}"),
        Resource::Coalition { id, .. } => format!("coalition {id}"),
    }
}

fn describe_actor(actor: &Actor) -> String {
    let who = match (actor.acting, actor.user_id) {
        _ if actor.is_system() => return "the system".to_owned(),
        (Some(acting), _) => {
            let operator = if acting.is_operator {
                "the operator organisation "
            } else {
                ""
            };
            format!("role {} of {operator}{}", acting.role, acting.org_id)
        }
        (None, Some(user_id)) => format!("user {user_id} acting for no organisation"),
        (None, None) => "a principal acting for no organisation".to_owned(),
    };
    match actor.credential {
        Credential::Token(token_id) => format!("{who} (token {token_id})"),
        Credential::Proposal(proposal_id) => format!("{who} (through proposal {proposal_id})"),
        Credential::Session(_) | Credential::System => who,
    }
}

#[cfg(test)]
mod tests {
    use agora_domain::actor::Acting;
    use agora_domain::{OrderId, OrgId, SessionId, TokenId, UserId};

    use super::*;

    /// Slicing by action and principal kind must not change any decision: compare every slice
    /// with the whole policy set, over policies using every kind of scope.
    #[test]
    fn slices_decide_like_the_whole_policy_set() {
        let (org_a, org_b, alice, bob) = (OrgId::new(), OrgId::new(), UserId::new(), UserId::new());
        let operator = format!(
            r#"
            @id("eq") forbid (principal == Agora::User::"{alice}", action == Agora::Action::"event.read", resource);
            @id("in") permit (principal in Agora::User::"{bob}", action in [Agora::Action::"audit.read", Agora::Action::"org.update"], resource);
            @id("is-in") permit (principal is Agora::User in Agora::Organisation::"{org_a}", action, resource is Agora::Organisation);
            @id("system-eq") forbid (principal == Agora::System::"instance", action == Agora::Action::"audit.checkpoint", resource);
            @id("any") forbid (principal, action, resource) when {{ context has granted_role && context.granted_role == "analyst" }};
            @id("target") permit (principal, action == Agora::Action::"member.remove", resource) when {{ context has target_role && context.target_role == "member" }};
            "#
        );
        let authorizer =
            Authorizer::with_operator_policies("operator.cedar", &operator).expect("loads");
        let mut whole = cedar::PolicySet::new();
        let mut order = HashMap::new();
        add_policies(
            &mut whole,
            &mut order,
            BUILTIN_SOURCE,
            Authorizer::BUILTIN_POLICIES,
            None,
        )
        .expect("parses");
        add_policies(
            &mut whole,
            &mut order,
            "operator.cedar",
            &operator,
            Some(OPERATOR_PREFIX),
        )
        .expect("parses");

        let mut actors = vec![
            Actor::system(),
            Actor {
                user_id: Some(alice),
                acting: None,
                credential: Credential::Session(SessionId::new()),
            },
        ];
        for role in Role::ALL {
            for (org_id, is_operator) in [(org_a, false), (org_b, true)] {
                for credential in [
                    Credential::Session(SessionId::new()),
                    Credential::Token(TokenId::new()),
                ] {
                    for user_id in [alice, bob] {
                        actors.push(Actor {
                            user_id: Some(user_id),
                            acting: Some(Acting {
                                org_id,
                                role,
                                is_operator,
                            }),
                            credential,
                        });
                    }
                }
            }
        }
        let resources = [
            Resource::Instance,
            Resource::Organisation(org_a),
            Resource::Organisation(org_b),
            Resource::Token {
                id: TokenId::new(),
                org_id: org_a,
                owner: alice,
            },
            Resource::Token {
                id: TokenId::new(),
                org_id: org_b,
                owner: bob,
            },
            Resource::Customer(alice),
            Resource::Order {
                id: OrderId::new(),
                customer: bob,
                sellers: vec![org_a, org_b],
            },
        ];
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

        let mut compared = 0;
        for actor in &actors {
            for action in Action::ALL {
                for resource in &resources {
                    for context in &contexts {
                        let (request, entities) = authorizer
                            .request(actor, action, resource, context)
                            .expect("builds");
                        let slice = &authorizer.slices
                            [slice_index(action_index(action), actor.is_system())];
                        let sliced = authorizer.engine.is_authorized(&request, slice, &entities);
                        let full = authorizer.engine.is_authorized(&request, &whole, &entities);
                        let reasons = |response: &cedar::Response| {
                            let mut ids: Vec<String> = response
                                .diagnostics()
                                .reason()
                                .map(ToString::to_string)
                                .collect();
                            ids.sort();
                            ids
                        };
                        assert_eq!(
                            (
                                sliced.decision(),
                                reasons(&sliced),
                                sliced.diagnostics().errors().count()
                            ),
                            (
                                full.decision(),
                                reasons(&full),
                                full.diagnostics().errors().count()
                            ),
                            "{actor:?} {action} {resource:?} {context:?}"
                        );
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(
            compared,
            actors.len() * Action::ALL.len() * resources.len() * contexts.len()
        );
    }
}
