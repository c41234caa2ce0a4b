//! [`SmallDisk`]: a filesystem a test can fill, to see what a service does on a full disk.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A tmpfs of a given size, mounted on a temporary folder and unmounted when dropped (also
/// when the test failed). Mounting needs root: tests using it are `#[ignore]`d with that
/// reason, and `scripts/test.sh` runs them when it runs as root.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (e.g. `"4m"`).
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("a mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A SQLite URL for a file `name` on this disk.
    pub fn sqlite_url(&self, name: &str) -> String {
        format!("sqlite://{}?mode=rwc", self.dir.path().join(name).display())
    }

    /// Takes every free byte with a ballast file.
    pub fn fill(&self) {
        let mut file = std::fs::File::create(self.ballast()).expect("ballast file");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&[0u8]).is_ok() {}
    }

    /// Gives the ballast's space back.
    pub fn empty(&self) {
        std::fs::remove_file(self.ballast()).expect("ballast removed");
    }

    fn ballast(&self) -> PathBuf {
        self.dir.path().join("ballast")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        match std::process::Command::new("umount")
            .arg(self.dir.path())
            .status()
        {
            Ok(status) if status.success() => {}
            outcome => eprintln!(
                "SmallDisk: umount {}: {outcome:?}",
                self.dir.path().display()
            ),
        }
    }
}
