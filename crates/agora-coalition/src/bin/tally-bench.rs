//! Times `tally` on a large coalition with long delegation chains against a plain sum of direct ballots.
//!
//! Usage: `tally-bench [--members N] [--iterations K]` (defaults 3000 and 200). The coalition is
//! generated from a fixed seed: weights 1..=10, half the members vote directly (a fifth of them
//! twice, changing their vote), 40% delegate in chains of 1 to 20 hops (by topic or in general,
//! with shadowed and other-topic delegations, and a few chains that cycle or end at a silent
//! member), and the rest stay silent. The baseline is the least any tally must do: one pass over
//! the direct ballots adding weights per choice, with no latest-ballot or delegation logic.

use std::hint::black_box;
use std::time::Instant;

use agora_coalition::{Ballot, Charter, Choice, Delegation, Electorate, tally};
use agora_domain::{OrgId, Timestamp};

const TOPIC: &str = "budget";

/// SplitMix64: a fixed, dependency-free generator so every run times the same coalition.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0; the bias is negligible for these sizes).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

fn org(n: usize) -> OrgId {
    format!("org_{n:032x}")
        .parse()
        .expect("a formatted number is a well-formed org id")
}

fn option(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|arg| arg == name) {
        None => Ok(default),
        Some(position) => args
            .get(position + 1)
            .and_then(|value| value.parse().ok())
            .filter(|value: &usize| *value > 0)
            .ok_or_else(|| format!("{name} needs a positive whole number")),
    }
}

struct Coalition {
    electorate: Electorate,
    delegations: Vec<Delegation>,
    ballots: Vec<Ballot>,
}

fn generate(members: usize, random: &mut SplitMix) -> Coalition {
    let ids: Vec<OrgId> = (1..=members).map(org).collect();
    let electorate = Electorate {
        weights: ids
            .iter()
            .map(|id| (*id, 1 + random.below(10) as u64))
            .collect(),
    };
    let mut order: Vec<usize> = (0..members).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, random.below(i + 1));
    }
    let voters_end = members / 2;
    let delegators_end = voters_end + members * 2 / 5;
    let voters = &order[..voters_end];
    let delegators = &order[voters_end..delegators_end.min(members)];
    let silent = &order[delegators_end.min(members)..];

    let choices = [Choice::Yes, Choice::No, Choice::Abstain];
    let mut ballots = Vec::new();
    for (position, voter) in voters.iter().enumerate() {
        let first = choices[random.below(3)];
        ballots.push(Ballot {
            voter: ids[*voter],
            choice: first,
            at: Timestamp::from_micros(position as i64),
        });
        if random.below(5) == 0 {
            ballots.push(Ballot {
                voter: ids[*voter],
                choice: choices[random.below(3)],
                at: Timestamp::from_micros((members + position) as i64),
            });
        }
    }

    let mut delegations = Vec::new();
    let mut delegate = |from: usize, to: usize, topic: Option<&str>| {
        delegations.push(Delegation {
            from: ids[from],
            to: ids[to],
            topic: topic.map(str::to_owned),
        });
    };
    let mut start = 0;
    while start < delegators.len() {
        let length = (1 + random.below(20)).min(delegators.len() - start);
        let chain = &delegators[start..start + length];
        for (hop, from) in chain.iter().enumerate() {
            let to = match chain.get(hop + 1) {
                Some(next) => *next,
                None => match random.below(20) {
                    0 => chain[0],
                    1 if !silent.is_empty() => silent[random.below(silent.len())],
                    _ if !voters.is_empty() => voters[random.below(voters.len())],
                    _ => chain[0],
                },
            };
            if random.below(2) == 0 {
                delegate(*from, to, Some(TOPIC));
                // A general delegation the topic one shadows.
                if random.below(2) == 0 {
                    delegate(*from, order[random.below(members)], None);
                }
            } else {
                delegate(*from, to, None);
            }
            if random.below(4) == 0 {
                delegate(*from, order[random.below(members)], Some("other"));
            }
        }
        start += length;
    }
    Coalition {
        electorate,
        delegations,
        ballots,
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (members, iterations) = match (
        option(&args, "--members", 3000),
        option(&args, "--iterations", 200),
    ) {
        (Ok(members), Ok(iterations)) => (members, iterations),
        (Err(problem), _) | (_, Err(problem)) => {
            eprintln!("tally-bench: {problem}\nusage: tally-bench [--members N] [--iterations K]");
            std::process::exit(2);
        }
    };
    let coalition = generate(members, &mut SplitMix(0xA60A));
    let charter = Charter::default();

    let direct: Vec<(u64, Choice)> = coalition
        .ballots
        .iter()
        .map(|ballot| (coalition.electorate.weights[&ballot.voter], ballot.choice))
        .collect();

    let mut tally_micros = Vec::with_capacity(iterations);
    let mut baseline_micros = Vec::with_capacity(iterations);
    let mut counted = 0;
    for _ in 0..iterations {
        let started = Instant::now();
        let result = tally(
            &charter,
            black_box(&coalition.electorate),
            black_box(&coalition.delegations),
            TOPIC,
            black_box(&coalition.ballots),
        );
        tally_micros.push(started.elapsed().as_secs_f64() * 1e6);
        counted = result.votes.len();
        black_box(result);

        let started = Instant::now();
        let mut sums = [0u64; 4];
        for (weight, choice) in black_box(&direct) {
            sums[*choice as usize] += weight;
        }
        black_box(sums);
        baseline_micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let tally_median = median(tally_micros);
    let baseline_median = median(baseline_micros);
    println!(
        "| members | delegations | ballots | counted votes | tally µs | baseline µs | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {:.1} | {:.2} | {:.0}x |",
        members,
        coalition.delegations.len(),
        coalition.ballots.len(),
        counted,
        tally_median,
        baseline_median,
        tally_median / baseline_median.max(0.01)
    );
}
