//! Reloading: the configuration is read anew and every application (or the one named) gets
//! a new pool of workers, started beside the running one; once each of its slots has a
//! ready worker, the old pool retires (its workers stop accepting and finish what they
//! hold). Apps no longer configured retire, new ones start. Listeners that stay in the
//! configuration are handed to the new pool as they are, never closed or bound again
//! (sockets inherited from systemd or a front end included); new ones are opened, and
//! those nobody holds any more are closed once the last pool holding them is gone.
//!
//! A configuration that does not load, or an app whose new workers cannot start, leaves the
//! running workers serving.

use std::rc::Rc;
use std::time::Instant;

use super::listeners::{self, Listener, SocketPerms};
use super::pool::Pool;
use super::privileges;
use super::spawn::{self, Image};
use super::supervise::{app_name, plural, Supervisor};
use crate::config::{Listen, Settings};

impl Supervisor {
    /// Reloads every app, or only `only`; Ok says what was started, Err why nothing was
    /// (each problem on its own line). Apps that could be started are, even when others
    /// could not: Err then lists the others.
    pub(super) fn reload(&mut self, only: Option<&str>) -> Result<String, String> {
        let config = (self.load)()?;
        let mut apps = config.apps;
        let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
        if let Some(name) = only {
            apps.retain(|a| a.name == name);
            if apps.is_empty() {
                return Err(format!("no app named {name:?} in the configuration"));
            }
        }
        let now = Instant::now();
        let mut started = Vec::new();
        let mut problems = Vec::new();
        for mut settings in apps {
            let current = self.current(&settings.name);
            // The one app of a configuration without listeners serves what it inherited.
            if settings.listen.is_empty() {
                if let Some(c) = current {
                    settings.listen = self.pools[c].settings().listen.clone();
                }
            }
            match self.start_pool(settings, current.map(|c| self.pools[c].generation)) {
                Ok(name) => started.push(name),
                Err(e) => problems.push(e),
            }
        }
        if only.is_none() {
            for p in &mut self.pools {
                if !p.is_retiring() && !names.iter().any(|n| n == p.name()) {
                    tracing::info!(
                        "{}: no longer configured; its workers finish their requests",
                        app_name(p.name())
                    );
                    p.replaces = None;
                    p.retire(now);
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(format!(
            "reload: starting new workers for {}",
            started
                .iter()
                .map(|n| app_name(n))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// Reloads, with the settings they run with, the apps one of whose `reload_on` files
    /// changed (only apps that serve and have no reload under way).
    pub(super) fn touch_reloads(&mut self, now: Instant) {
        let mut due = Vec::new();
        for p in &mut self.pools {
            if p.is_retiring() || p.replaces.is_some() || !p.all_ready_once() {
                continue;
            }
            if let Some(path) = p.watch.as_mut().and_then(|w| w.changed(now)) {
                due.push((p.generation, path));
            }
        }
        for (generation, path) in due {
            if self.pools.iter().any(|p| p.replaces == Some(generation)) {
                continue;
            }
            let Some(p) = self.pools.iter().find(|p| p.generation == generation) else {
                continue;
            };
            let settings = p.settings().clone();
            let what = app_name(&settings.name);
            tracing::info!(
                "{what}: {} changed (reload_on); reloading it",
                path.display()
            );
            if let Err(e) = self.start_pool(settings, Some(generation)) {
                tracing::error!("{e}; the running workers keep serving");
            }
        }
    }

    /// The pool serving the app called `name`: not one starting to replace it, nor one
    /// retiring.
    fn current(&self, name: &str) -> Option<usize> {
        self.pools
            .iter()
            .position(|p| p.name() == name && !p.is_retiring() && p.replaces.is_none())
    }

    /// Starts a pool for `settings`, to replace the pool `replaces`; a pool already
    /// starting to replace it is superseded (it retires). Err says why it could not.
    fn start_pool(&mut self, settings: Settings, replaces: Option<u64>) -> Result<String, String> {
        let name = settings.name.clone();
        let what = app_name(&name);
        // As at start: an application that may not run as configured starts nothing.
        let found = privileges::check(&settings, spawn::python(&settings).ok().as_deref());
        if !found.is_empty() {
            let problems: Vec<String> = found
                .refused
                .into_iter()
                .chain(found.files)
                .map(|e| format!("{what}: {e}"))
                .collect();
            return Err(problems.join("\n"));
        }
        let listeners = self
            .listeners_for(&settings.listen, &SocketPerms::of(&settings))
            .map_err(|e| format!("{what}: {e}"))?;
        let image = Image::find(&settings).map_err(|e| format!("{what}: {e}"))?;
        let now = Instant::now();
        for p in &mut self.pools {
            if p.replaces.is_some() && p.replaces == replaces && p.name() == name {
                tracing::info!("{what}: superseding the workers a previous reload started");
                p.replaces = None;
                p.retire(now);
            }
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        tracing::info!(
            "{what}: starting {} for {}",
            plural(settings.processes, "worker"),
            settings.app
        );
        let mut pool = Pool::new(settings, image, listeners, generation, replaces);
        if let Some(old) = self.pools.iter().find(|p| Some(p.generation) == replaces) {
            pool.inherit_history(old);
        }
        let ok = pool.start_all();
        if !ok {
            pool.replaces = None;
            pool.retire(now);
        }
        self.pools.push(pool);
        if ok {
            Ok(name)
        } else {
            Err(format!("{what}: cannot start its new workers"))
        }
    }

    /// The listeners for `listen`: those a pool already holds for the same protocol and
    /// address, shared, and the others opened now.
    fn listeners_for(
        &self,
        listen: &[Listen],
        perms: &SocketPerms,
    ) -> Result<Vec<Rc<Listener>>, String> {
        let mut found = Vec::with_capacity(listen.len());
        for l in listen {
            let held = self.pools.iter().find_map(|p| {
                p.settings()
                    .listen
                    .iter()
                    .zip(p.listeners())
                    .find(|(configured, _)| *configured == l)
                    .map(|(_, open)| open.clone())
            });
            match held {
                Some(open) => found.push(open),
                None => {
                    let mut opened = listeners::open_all(std::slice::from_ref(l), perms)?;
                    match opened.pop() {
                        Some(new) => found.push(Rc::new(new)),
                        None => return Err("no listener opened".into()),
                    }
                }
            }
        }
        Ok(found)
    }
}
