//! From a job spec to a physical plan: which nodes chain into one task, and
//! how each edge partitions records.

use std::collections::HashMap;

use weir_spec::{JobSpec, KeyBy, split_input};

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// Reads a connector.
    Source,
    /// Runs a plugin.
    Operator,
    /// Writes a connector.
    Sink,
}

/// How an edge spreads records over the downstream tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitioning {
    /// Upstream task `i` to downstream task `i` (equal parallelism).
    Forward,
    /// By key group of the key.
    Hash(KeyBy),
    /// Round robin.
    Rebalance,
}

/// An input of a node.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The upstream node.
    pub from: String,
    /// The upstream side output, or `None` for the main output.
    pub side: Option<String>,
    /// The downstream node.
    pub to: String,
    /// How records are spread.
    pub partitioning: Partitioning,
}

/// A node of the plan.
#[derive(Debug, Clone)]
pub struct Node {
    /// The node id.
    pub id: String,
    /// Its role.
    pub role: NodeRole,
    /// Its parallelism.
    pub parallelism: u32,
}

/// The physical plan: nodes, edges and chains of nodes that run in one task.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Nodes by id.
    pub nodes: HashMap<String, Node>,
    /// Every edge.
    pub edges: Vec<Edge>,
    /// Chains in topological order; each runs as `parallelism` tasks.
    pub chains: Vec<Vec<String>>,
}

impl Plan {
    /// Builds the plan of a (validated) spec.
    pub fn new(spec: &JobSpec) -> Plan {
        let mut nodes = HashMap::new();
        let mut order = Vec::new();
        for s in &spec.sources {
            nodes.insert(
                s.id.clone(),
                Node { id: s.id.clone(), role: NodeRole::Source, parallelism: spec.parallelism_of(s.parallelism) },
            );
            order.push(s.id.clone());
        }
        for o in &spec.operators {
            nodes.insert(
                o.id.clone(),
                Node { id: o.id.clone(), role: NodeRole::Operator, parallelism: spec.parallelism_of(o.parallelism) },
            );
        }
        for s in &spec.sinks {
            nodes.insert(
                s.id.clone(),
                Node { id: s.id.clone(), role: NodeRole::Sink, parallelism: spec.parallelism_of(s.parallelism) },
            );
        }
        let mut edges = Vec::new();
        let inputs = spec
            .operators
            .iter()
            .map(|o| (o.id.clone(), o.input.to_vec(), o.key_by()))
            .chain(spec.sinks.iter().map(|s| (s.id.clone(), s.input.to_vec(), None)));
        for (to, ins, key_by) in inputs {
            for input in ins {
                let (from, side) = split_input(&input);
                let partitioning = match &key_by {
                    Some(k) => Partitioning::Hash(k.clone()),
                    None if nodes[from].parallelism == nodes[&to].parallelism => Partitioning::Forward,
                    None => Partitioning::Rebalance,
                };
                edges.push(Edge {
                    from: from.to_string(),
                    side: side.map(str::to_string),
                    to: to.clone(),
                    partitioning,
                });
            }
        }

        // Topological order of operators and sinks (the spec has no cycles).
        let mut placed: std::collections::HashSet<String> = order.iter().cloned().collect();
        let pending: Vec<String> =
            spec.operators.iter().map(|o| o.id.clone()).chain(spec.sinks.iter().map(|s| s.id.clone())).collect();
        while placed.len() < nodes.len() {
            for id in &pending {
                if !placed.contains(id) && edges.iter().filter(|e| &e.to == id).all(|e| placed.contains(&e.from)) {
                    placed.insert(id.clone());
                    order.push(id.clone());
                }
            }
        }

        // Chain `to` into `from` when it is `from`'s only consumer, its only
        // input, on the main output, forward.
        let chained_into = |to: &str| -> Option<String> {
            let ins: Vec<&Edge> = edges.iter().filter(|e| e.to == to).collect();
            let [e] = ins.as_slice() else { return None };
            let consumers = edges.iter().filter(|c| c.from == e.from && c.side.is_none()).count();
            (e.side.is_none()
                && e.partitioning == Partitioning::Forward
                && consumers == 1
                && nodes[&e.from].role != NodeRole::Sink)
                .then(|| e.from.clone())
        };
        let mut chains: Vec<Vec<String>> = Vec::new();
        for id in &order {
            match chained_into(id).and_then(|up| chains.iter_mut().find(|c| c.last() == Some(&up))) {
                Some(chain) => chain.push(id.clone()),
                None => chains.push(vec![id.clone()]),
            }
        }
        Plan { nodes, edges, chains }
    }

    /// Edges into the head of a chain, in a fixed order.
    pub fn inputs_of(&self, node: &str) -> Vec<&Edge> {
        self.edges.iter().filter(|e| e.to == node).collect()
    }

    /// The input slot base of each edge into `node`: upstream task `i` of
    /// edge `k` sends as slot `base[k] + i`. Returns the bases and the total.
    pub fn input_slots(&self, node: &str) -> (Vec<usize>, usize) {
        let mut bases = Vec::new();
        let mut total = 0;
        for e in self.inputs_of(node) {
            bases.push(total);
            total += self.nodes[&e.from].parallelism as usize;
        }
        (bases, total)
    }
}

#[cfg(test)]
mod tests {
    use weir_spec::Format;

    use super::*;

    #[test]
    fn chains_forward_edges_and_splits_at_key_by() {
        let spec = JobSpec::parse(
            "name: t
sources: [{id: src, type: generator, generator: sensor-bench, events: 1}]
operators:
  - {id: c, input: src, plugin: c.wasm}
  - {id: avg, input: c, plugin: a.wasm, key_by: key}
sinks:
  - {id: out, type: stdout, input: avg}
  - {id: late, type: stdout, input: avg.late}
",
            Format::Yaml,
        )
        .unwrap();
        let plan = Plan::new(&spec);
        assert_eq!(plan.chains, vec![vec!["src", "c"], vec!["avg", "out"], vec!["late"]]);
        assert_eq!(plan.input_slots("avg"), (vec![0], 1));
    }
}
