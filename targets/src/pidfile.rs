//! Shell commands that control a server through its pidfile: the same for
//! every target started detached on a node (etcd, faultline-node).

/// SIGKILL by pidfile (nothing when it is not running); prints the pid.
pub fn kill_command(pid_file: &str) -> String {
    format!(
        "p=$(cat {pid_file} 2>/dev/null); if [ -n \"$p\" ]; then kill -9 $p 2>/dev/null; fi; echo \"$p\""
    )
}

/// SIGSTOP by pidfile.
pub fn pause_command(pid_file: &str) -> String {
    format!("kill -STOP $(cat {pid_file})")
}

/// SIGCONT by pidfile.
pub fn resume_command(pid_file: &str) -> String {
    format!("kill -CONT $(cat {pid_file})")
}

/// Kills the process (resuming it first, in case it is paused), waits up to
/// 5 s until it is gone, then runs `then` (removing its files).
pub fn teardown_command(pid_file: &str, then: &str) -> String {
    format!(
        "p=$(cat {pid_file} 2>/dev/null); if [ -n \"$p\" ]; then kill -CONT $p 2>/dev/null; kill -9 $p 2>/dev/null; \
         i=0; while kill -0 $p 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; fi; \
         {then}"
    )
}

/// Starts `cmd` detached in `dir` (after `mkdir -p` of `dirs`) unless the
/// pidfile names a live process; stderr and stdout go to `log`. Prints the
/// pid either way, so the same command is also the heal of a kill.
///
/// `;` before the backgrounded command: `a && b &` would background the
/// whole list (LAB-NOTES §2 pitfall 3).
pub fn start_command(pid_file: &str, dirs: &str, dir: &str, cmd: &str, log: &str) -> String {
    format!(
        "if [ -f {pid_file} ] && kill -0 $(cat {pid_file}) 2>/dev/null; then cat {pid_file}; exit 0; fi; \
         mkdir -p {dirs}; cd {dir}; \
         setsid nohup {cmd} </dev/null >>{log} 2>&1 & echo $! > {pid_file}; cat {pid_file}"
    )
}
