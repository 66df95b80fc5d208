fn main() {
    eprintln!("irma-server: not yet");
}
