//! What `--html` and the run report draw of one checked file.

use super::*;

/// Every anomaly of a result in order (`anomalies` is anomaly type →
/// list, docs/results.md).
pub(super) fn all_anomalies(json: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    json["anomalies"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|l| l.as_array().into_iter().flatten())
}

/// The page's view of one checked file: the verdict, the cause sentence
/// (the checker's minimal explanation, or its first anomaly's), the
/// reason of an unknown verdict, and what the viewers draw.
pub(super) fn page_of(file: &Path, o: FileOutcome) -> faultline_results::timeline::CheckFile {
    let json = &o.json;
    let mut lines = o.text.lines();
    let summary = lines.next().unwrap_or_default().to_string();
    let details: String = lines.map(|l| format!("{}\n", l.trim_start())).collect();
    let first_anomaly = all_anomalies(json)
        .next()
        .and_then(|a| {
            ["minimal_explanation", "explanation", "message"]
                .iter()
                .find_map(|f| a[*f].as_str())
        })
        .map(str::to_string);
    let cause = o
        .views
        .cause
        .clone()
        .or(first_anomaly)
        .or_else(|| details.lines().next().map(str::to_string));
    let reason = json["reason"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            json["reasons"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|r| !r.is_empty())
        })
        .or_else(|| {
            // Linearizability: the first key that did not finish.
            json["keys"].as_object().and_then(|keys| {
                keys.iter()
                    .find_map(|(k, r)| r["reason"].as_str().map(|why| format!("key {k:?}: {why}")))
            })
        });
    faultline_results::timeline::CheckFile {
        file: file.display().to_string(),
        model: json["model"].as_str().unwrap_or_default().to_string(),
        verdict: o.verdict,
        summary,
        cause: (o.verdict == Verdict::Invalid).then_some(cause).flatten(),
        reason: (o.verdict == Verdict::Unknown).then_some(reason).flatten(),
        details,
        views: o.views,
    }
}

/// The failure viewer's data for a linearizability result: a tab per key
/// that is not linearizable (keys in numeric, else text, order) and the
/// cause sentence from the first key's minimal explanation. `whole`: the
/// history was checked as one object (`--no-split`).
pub(super) fn lin_views(
    result: &faultline_checker::linear::LinearResult,
    json: &serde_json::Value,
    ops: &[Operation],
    history: &History,
    spec: &faultline_checker::model::ModelSpec,
    whole: bool,
) -> faultline_results::AnomalyViews {
    let anomaly_of = |key: &str| all_anomalies(json).find(|a| a["key"].as_str() == Some(key));
    let mut views = faultline_results::AnomalyViews::default();
    for (key, kr) in &result.keys {
        if kr.verdict == Verdict::Invalid {
            views
                .lin
                .push(faultline_results::lin_viewer::LinKeyView::build(
                    key,
                    kr,
                    ops,
                    history,
                    spec,
                    whole,
                    anomaly_of(key),
                ));
        }
    }
    views
        .lin
        .sort_by(|a, b| match (a.key.parse::<u64>(), b.key.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.key.cmp(&b.key),
        });
    let more = match views.lin.len() {
        0 | 1 => String::new(),
        n => format!(" (1 of {n} keys that are not linearizable)"),
    };
    views.cause = views.lin.first().and_then(|v| v.cause(&more));
    views
}
