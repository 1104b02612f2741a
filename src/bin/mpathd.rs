fn main() {
    println!("mpathd: not yet");
}
