//! The worker's process title (`ps`, `/proc/PID/cmdline`): `wsgid: worker N` instead of
//! the interpreter's command line with its bootstrap, written over the process's argument
//! strings as setproctitle, nginx and PostgreSQL do.

/// Replaces the command line with `title` (truncated to the room the original arguments
/// had). Best effort: without `/proc` the title stays as it was.
pub fn set(title: &str) {
    let Some((start, end)) = arg_area() else {
        return;
    };
    let room = end - start;
    if room == 0 {
        return;
    }
    let n = title.len().min(room - 1);
    // SAFETY: [arg_start, arg_end) is this process's own argument strings, which the kernel
    // placed in the writable initial stack at exec; `arg_area` read both bounds from this
    // process's /proc/self/stat, so the whole range is mapped. Nothing reads it
    // concurrently: this runs on the interpreter's main thread before wsgid starts any
    // thread, and Python decoded argv into its own copies during start-up. Pointers others
    // keep into it (glibc's `program_invocation_name`) read the new title afterwards, which
    // is the point.
    unsafe {
        let p = start as *mut u8;
        std::ptr::copy_nonoverlapping(title.as_ptr(), p, n);
        std::ptr::write_bytes(p.add(n), 0, room - n);
    }
}

/// `arg_start` and `arg_end`, fields 48 and 49 of /proc/self/stat (after the command name,
/// which is in parentheses and may itself contain spaces and parentheses).
fn arg_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state).
    let mut fields = rest.split_whitespace().skip(48 - 3);
    let start: usize = fields.next()?.parse().ok()?;
    let end: usize = fields.next()?.parse().ok()?;
    (start != 0 && end > start).then_some((start, end))
}
