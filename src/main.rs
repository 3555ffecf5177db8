/// Rust's allocations go to jemalloc: glibc's malloc and free were a sixth
/// of the server's CPU under PostgreSQL sign-ups.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    masthead::cli::main()
}
