//! `keysmith-agent`: the agent binary (see `keysmith_agent::cli` and `docs/agent.md`).

fn main() -> std::process::ExitCode {
    keysmith_agent::cli::main_with(std::env::args().skip(1).collect())
}
