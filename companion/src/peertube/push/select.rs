//! Which jobs a push makes: the selected documents as jobs, and batches in which each video appears once.

use super::{Job, PushSummary};
use crate::peertube::ledger::{self, Prior, PushDoc, Unpushable};
use std::collections::{HashMap, HashSet};

/// Splits jobs into batches in which every video appears once; repeats go to later batches.
pub fn unique_batches(jobs: Vec<Job>, size: usize) -> Vec<Vec<Job>> {
    let mut out = Vec::new();
    let mut rest = jobs;
    while !rest.is_empty() {
        let mut seen = HashSet::new();
        let (mut this, mut next) = (Vec::new(), Vec::new());
        for j in rest {
            if seen.insert(j.video.clone()) {
                this.push(j);
            } else {
                next.push(j);
            }
        }
        let mut it = this.into_iter().peekable();
        while it.peek().is_some() {
            out.push(it.by_ref().take(size.max(1)).collect());
        }
        rest = next;
    }
    out
}

/// Turns selected documents into jobs; the rest are reported as unpushable.
pub fn plan(docs: Vec<PushDoc>, priors: &HashMap<String, Prior>, summary: &mut PushSummary) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(docs.len());
    for doc in docs {
        match ledger::target_of(&doc) {
            Ok((video, category)) => {
                *summary.by_domain.entry(doc.domain.clone()).or_default() += 1;
                let prior = priors.get(video.as_str()).filter(|p| p.new == Some(category) && p.hash.as_deref().is_none_or(|h| h == doc.hash)).cloned();
                jobs.push(Job { doc, video, category, prior });
            }
            Err(why) => {
                if matches!(why, Unpushable::Path(_)) {
                    eprintln!("not pushable: {} ({}): {why}", doc.hash, doc.path);
                }
                summary.unpushable.push((doc.hash.clone(), format!("{why} — path {:?}", doc.path)));
            }
        }
    }
    jobs
}
