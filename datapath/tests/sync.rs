//! `--sync`: under `everysec` (the default) a background thread syncs the file tier and the
//! shards never do; `no` starts none; `always` acknowledges writes after msync. Every mode keeps
//! the data across a SIGKILL (the page cache outlives the process).

mod common;

use common::Server;

fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the server's threads")
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
fn each_sync_mode_keeps_writes_across_a_kill_and_only_everysec_runs_a_sync_thread() {
    for (mode, sync_thread) in [("everysec", true), ("no", false), ("always", false)] {
        let directory =
            std::env::temp_dir().join(format!("ferrite-sync-{}-{mode}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let data = directory.join("items");
        let data_text = data.to_str().unwrap();
        let flags = ["--threads", "2", "--data-file", data_text, "--sync", mode];
        let mut server = Server::start(&flags);
        let mut client = server.client();
        for n in 0..100 {
            let key = format!("k{n}");
            assert_eq!(client.call(&["SET", &key, mode]), b"+OK\r\n");
        }
        let config = client.call(&["CONFIG", "GET", "appendfsync"]);
        assert!(
            String::from_utf8_lossy(&config).ends_with(&format!("{mode}\r\n")),
            "{mode}"
        );
        let names = thread_names(server.pid());
        assert_eq!(
            names.iter().any(|name| name == "ferrite-sync"),
            sync_thread,
            "{mode}: threads {names:?}"
        );
        server.stop_with(libc::SIGKILL);
        let restarted = Server::start(&flags);
        let mut client = restarted.client();
        for n in 0..100 {
            let key = format!("k{n}");
            let expected = format!("${}\r\n{mode}\r\n", mode.len());
            assert_eq!(client.call(&["GET", &key]), expected.as_bytes(), "{mode}");
        }
        restarted.stop();
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
