//! `custodian check`: the configuration in effect, printed without secrets,
//! and whether the store opens.

use crate::config::Loaded;
use crate::service::users;
use crate::store::Store;

pub async fn check(loaded: &Loaded) -> anyhow::Result<()> {
    let c = &loaded.config;
    match &loaded.file {
        Some(f) => println!("config file:      {}", f.display()),
        None => println!("config file:      (none; defaults and CUSTODIAN_* variables)"),
    }
    println!("listen:           {}", c.listen);
    println!("data dir:         {}", c.data_dir.display());
    println!("store:            {}", c.store_url());
    println!("public url:       {}", c.public_base(c.listen));
    println!("secure cookies:   {}", c.secure_cookies);
    println!("trust proxy hdrs: {}", c.trust_proxy_headers);
    println!(
        "session timeouts: idle {}, absolute {}",
        humantime::format_duration(c.session_idle_timeout),
        humantime::format_duration(c.session_absolute_timeout)
    );
    println!(
        "http limits:      header timeout {}, {} connections",
        humantime::format_duration(c.header_timeout),
        c.max_connections
    );
    let store = Store::open(&c.store_url()).await?;
    let users = users::count(&store).await?;
    println!("store check:      ok ({users} users)");
    store.close().await;
    Ok(())
}
