//! `queue list`: pages of calls in one queue state, walking the companies in name order.

use chrono::{DateTime, Utc};
use outdial_queue::Cursor;
use serde::Serialize;

use super::{Ops, OpsError, Result, parse_state, partition, state_name};

/// One listed call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedCall {
    pub call_id: String,
    pub company: String,
    /// Due time (scheduled, due), lease expiry (in flight) or entry time (reconcile, dead).
    pub at: DateTime<Utc>,
}

/// A page of `queue list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage {
    pub state: &'static str,
    pub items: Vec<ListedCall>,
    /// Pass as `--cursor` / `?cursor=` for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

impl Ops {
    /// One page of calls in `state` of one company (or, without one, of the first company
    /// in name order that has any: a cursor names its company).
    pub async fn list(
        &self,
        state: &str,
        company: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<ListPage> {
        let state = parse_state(state)?;
        let limit = limit.clamp(1, outdial_queue::MAX_PAGE);
        // The cursor text is `<company index>~<queue cursor>`: pages walk the companies.
        let mut companies = self.companies(company).await?;
        companies.sort_by(|a, b| a.name.cmp(&b.name));
        let (mut from, mut inner) = match cursor {
            None => (0, None),
            Some(c) => {
                let (i, rest) = c.split_once('~').ok_or(OpsError::BadCursor)?;
                let i: usize = i.parse().map_err(|_| OpsError::BadCursor)?;
                let inner = if rest.is_empty() {
                    None
                } else {
                    Some(Cursor::decode(rest).ok_or(OpsError::BadCursor)?)
                };
                (i, inner)
            }
        };
        let mut items = Vec::new();
        while from < companies.len() && items.len() < limit {
            let c = &companies[from];
            let page = self
                .queue
                .list(
                    &partition(c.id)?,
                    state,
                    inner.as_ref(),
                    limit - items.len(),
                )
                .await?;
            items.extend(page.items.iter().map(|l| ListedCall {
                call_id: l.job.call.as_uuid().to_string(),
                company: c.name.clone(),
                at: l.at,
            }));
            match page.next {
                Some(next) => inner = Some(next),
                None => {
                    from += 1;
                    inner = None;
                }
            }
        }
        let next_cursor = (from < companies.len())
            .then(|| format!("{from}~{}", inner.map(|c| c.encode()).unwrap_or_default()));
        Ok(ListPage {
            state: state_name(state),
            items,
            next_cursor,
        })
    }
}
