//! The three plots, rendered from a synthetic history.

mod common;

use faultline_results::plots::{self, PlotData, PlotKind};
use std::fs;

#[test]
fn pngs_render_with_size_colour_and_faults() {
    let h = common::synthetic(4_000);
    let windows = plots::fault_windows(&h);
    assert_eq!(windows.len(), 2, "{windows:?}");
    let data = PlotData::new(&h, windows);
    assert!(data.len() > 1_000, "{}", data.len());
    let dir = std::env::var_os("FAULTLINE_PLOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("faultline-plots-{}", std::process::id()))
        });
    fs::create_dir_all(&dir).unwrap();
    plots::render_all_png(&data, &dir).unwrap();
    for kind in PlotKind::ALL {
        let bytes = fs::read(dir.join(kind.file_name())).unwrap();
        assert_eq!(
            common::png_size(&bytes),
            (plots::WIDTH, plots::HEIGHT),
            "{kind:?}"
        );
        assert!(bytes.len() > 20_000, "{kind:?}: only {} bytes", bytes.len());
        // anti-aliased text, markers in several colours, shaded bands
        let colours = common::distinct_colours(&bytes);
        assert!(colours > 100, "{kind:?}: only {colours} colours");
    }
    if std::env::var_os("FAULTLINE_PLOT_DIR").is_none() {
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn svg_variant_has_text_and_bands() {
    let h = common::synthetic(1_000);
    let data = PlotData::new(&h, plots::fault_windows(&h));
    for kind in PlotKind::ALL {
        let svg = plots::render_svg(kind, &data).unwrap();
        assert!(svg.starts_with("<svg"), "{kind:?}");
        assert!(svg.contains("time since test start (s)"));
        assert!(svg.contains("partition") && svg.contains("kill"));
    }
}

#[test]
fn empty_history_still_draws_axes() {
    let h = faultline_checker::History::default();
    let data = PlotData::new(&h, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    for kind in PlotKind::ALL {
        let p = tmp.path().join(kind.file_name());
        plots::render_png(kind, &data, &p).unwrap();
        let bytes = fs::read(&p).unwrap();
        assert_eq!(common::png_size(&bytes), (plots::WIDTH, plots::HEIGHT));
    }
}
