//! Bots of the Bot API simulator made lanbox accounts, the way `lanbox account add` does it
//! (the token checked with `getMe` against the simulator, then stored sealed).

use lanbox::channels::telegram::bots::{self, AddBot};
use lanbox::channels::telegram::client::{Token, http_client};
use lanbox::dev::simulator::{SimBot, Simulator};
use lanbox::store::Store;

/// Adds `bot` to `store` as a Telegram account named `name` (the bot's username if `None`);
/// returns the account's id.
pub async fn add(store: &Store, sim: &Simulator, bot: &SimBot, name: Option<&str>) -> u64 {
    bots::add(
        store,
        http_client().unwrap(),
        AddBot {
            token: Token::new(bot.token()).unwrap(),
            name: name.map(Into::into),
            rented: false,
            daily_limit: None,
            api_base: Some(sim.api_base()),
        },
    )
    .await
    .unwrap()
    .id
}
