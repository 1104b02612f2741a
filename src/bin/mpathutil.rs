fn main() {
    println!("mpathutil: not yet");
}
