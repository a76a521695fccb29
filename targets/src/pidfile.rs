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
