//! One tree in its loaded form: flat nodes in sklearn's depth-first order, with
//! the leaf terms already scaled by the learning rate. Built only by
//! `export::load_tree`, which checks the shape (children after their parent,
//! one parent each, at most [`MAX_TREE_DEPTH`](super::MAX_TREE_DEPTH) levels),
//! so every walk here ends at a leaf within the cap.

use super::super::explain::{Point, ShapTree};

/// `Node::feature` of a leaf.
pub(super) const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct Node {
    /// Feature index, or `LEAF`.
    pub(super) feature: u32,
    pub(super) left: u32,
    pub(super) right: u32,
    pub(super) threshold: f64,
    /// For leaves: learning_rate * leaf value, the term sklearn adds.
    pub(super) term: f64,
}

impl Node {
    #[inline]
    pub(super) fn is_leaf(&self) -> bool {
        self.feature == LEAF
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Tree {
    pub(super) nodes: Vec<Node>,
    /// Per node, parallel to `nodes`; empty for version 1 exports.
    pub(super) cover: Vec<f64>,
    /// Splits on the longest root-to-leaf path (0 for a single leaf), measured
    /// at load without recursion.
    pub(super) depth: usize,
}

impl ShapTree for Tree {
    fn is_leaf(&self, node: usize) -> bool {
        self.nodes[node].is_leaf()
    }
    fn feature(&self, node: usize) -> usize {
        self.nodes[node].feature as usize
    }
    fn hot_cold(&self, node: usize, x: &Point) -> (usize, usize) {
        let n = &self.nodes[node];
        if x[n.feature as usize] <= n.threshold {
            (n.left as usize, n.right as usize)
        } else {
            (n.right as usize, n.left as usize)
        }
    }
    fn term(&self, node: usize) -> f64 {
        self.nodes[node].term
    }
    fn cover(&self, node: usize) -> f64 {
        self.cover[node]
    }
}

impl Tree {
    /// The leaf term `x` (float32-rounded) reaches: an iterative walk.
    #[inline]
    pub(super) fn term(&self, x: &Point) -> f64 {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            if n.feature == LEAF {
                return n.term;
            }
            i = if x[n.feature as usize] <= n.threshold { n.left } else { n.right } as usize;
        }
    }

    pub(super) fn max_abs_term(&self) -> f64 {
        self.nodes.iter().filter(|n| n.is_leaf()).map(|n| n.term.abs()).fold(0.0, f64::max)
    }

    /// A single split whose children are both leaves.
    pub(super) fn as_stump(&self) -> Option<(&Node, &Node, &Node)> {
        match self.nodes.as_slice() {
            [root, a, b] if a.is_leaf() && b.is_leaf() => {
                Some((root, &self.nodes[root.left as usize], &self.nodes[root.right as usize]))
            }
            _ => None,
        }
    }
}
