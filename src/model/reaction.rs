//! Reactions on a message: who reacted with what, and the totals the inbox shows.
//!
//! Telegram reports reactions two ways. `message_reaction` names one actor (a user, or a chat
//! for anonymous admins) and their full new set of reactions; `message_reaction_count` gives
//! only anonymous totals (channels). [`Reactions`] keeps both and derives one tally: the
//! anonymous totals when Telegram sent them, otherwise the count over the named actors.
//!
//! A reaction says something about a conversation, so the store seals it like message content.

use serde::{Deserialize, Serialize};

/// Named actors kept per message; past this the oldest entry is dropped (its reaction then no
/// longer counts). A bot sees per-user reactions only in private chats and groups where it is
/// an administrator, so the cap is rarely reached.
pub const MAX_ACTORS: usize = 1_000;
/// Distinct reactions one actor may hold (Telegram allows 3, premium users more).
pub const MAX_PER_ACTOR: usize = 16;

/// One reaction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reaction {
    Emoji(String),
    /// A custom emoji, by Telegram's custom emoji id.
    Custom(String),
    /// A paid (star) reaction.
    Paid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionTally {
    pub reaction: Reaction,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorReactions {
    /// Telegram user id, or chat id for a reaction on behalf of a chat.
    pub actor: i64,
    pub reactions: Vec<Reaction>,
}

/// Everything known about one message's reactions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reactions {
    /// Latest anonymous totals (`message_reaction_count`), when Telegram sent any.
    pub totals: Option<Vec<ReactionTally>>,
    /// Named actors and their current reactions, oldest change first.
    pub actors: Vec<ActorReactions>,
}

impl Reactions {
    /// Replaces one actor's reactions; an empty set removes the actor.
    pub fn set_actor(&mut self, actor: i64, mut reactions: Vec<Reaction>) {
        self.actors.retain(|a| a.actor != actor);
        reactions.truncate(MAX_PER_ACTOR);
        if reactions.is_empty() {
            return;
        }
        if self.actors.len() >= MAX_ACTORS {
            self.actors.remove(0);
        }
        self.actors.push(ActorReactions { actor, reactions });
    }

    pub fn set_totals(&mut self, mut totals: Vec<ReactionTally>) {
        totals.retain(|t| t.count > 0);
        self.totals = Some(totals);
    }

    /// What to show: each reaction with its count, most frequent first.
    pub fn tally(&self) -> Vec<ReactionTally> {
        let mut out: Vec<ReactionTally> = match &self.totals {
            Some(t) => t.clone(),
            None => {
                let mut counts = std::collections::BTreeMap::<&Reaction, u32>::new();
                for a in &self.actors {
                    for r in &a.reactions {
                        *counts.entry(r).or_default() += 1;
                    }
                }
                counts
                    .into_iter()
                    .map(|(reaction, count)| ReactionTally {
                        reaction: reaction.clone(),
                        count,
                    })
                    .collect()
            }
        };
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reaction.cmp(&b.reaction)));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.actors.is_empty() && self.totals.as_ref().is_none_or(|t| t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Reaction {
        Reaction::Emoji(s.into())
    }

    #[test]
    fn actors_replace_their_set_and_totals_take_precedence() {
        let mut r = Reactions::default();
        r.set_actor(1, vec![e("👍")]);
        r.set_actor(2, vec![e("👍"), e("🔥")]);
        r.set_actor(1, vec![e("🔥")]);
        let t = r.tally();
        assert_eq!(
            t[0],
            ReactionTally {
                reaction: e("🔥"),
                count: 2
            }
        );
        assert_eq!(
            t[1],
            ReactionTally {
                reaction: e("👍"),
                count: 1
            }
        );
        r.set_actor(2, vec![]);
        assert_eq!(
            r.tally(),
            vec![ReactionTally {
                reaction: e("🔥"),
                count: 1
            }]
        );
        r.set_totals(vec![ReactionTally {
            reaction: Reaction::Paid,
            count: 7,
        }]);
        assert_eq!(
            r.tally(),
            vec![ReactionTally {
                reaction: Reaction::Paid,
                count: 7
            }]
        );
    }

    #[test]
    fn actor_list_is_bounded() {
        let mut r = Reactions::default();
        for a in 0..(MAX_ACTORS as i64 + 10) {
            r.set_actor(a, vec![e("👍")]);
        }
        assert_eq!(r.actors.len(), MAX_ACTORS);
        assert_eq!(r.actors[0].actor, 10);
    }
}
