// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file public_folder.h
/// `gw import simple-shapes-folder DIR OUT.h5`: a folder written by `shapesd create` of the public
/// Simple Shapes dataset (ruflab/simple-shapes-dataset; `cli/create_dataset.py`, `cli/utils.py`,
/// `domain.py`) turned into GW Studio's HDF5 layout (docs/data-format.md), so that the experiments made
/// for `gw import simple-shapes` run on the public samples. Torch-free and Qt-free.
///
/// Read from DIR, for each split S of train, val, test:
///   S/{i}.png               32 × 32 PNG, 8-bit RGB or RGBA (the public one is RGBA, alpha 255;
///                           the alpha is dropped, as PIL's convert("RGB") in SimpleShapesImages does)
///   S_labels.npy            (N, 12) float32: class, x, y, size, rotation, r, g, b, h, l, s, unpaired
///                           (cli/utils.py save_labels; an older folder's 11 columns, without unpaired, too)
///   S_captions.npy          (N,) NumPy text (<U): the captions
///   S_caption_choices.npy   (N,) pickled dicts: each caption's grammar choices (data/public_captions.h)
///   S_latent.npy            (N, D) float32: BERT's [CLS] vector of each caption (D = 768 for bert-base)
///   latent_mean.npy, latent_std.npy   (D,) float32: the training split's mean and standard deviation
///   S_unpaired.npy          (N, K) float64, optional (K = 32, standard normal draws)
/// The last five are the text; with `text = false` (gw's --no-text) they are neither read nor needed.
/// domain_splits/ and domain_splits_v2/ are not converted: an experiment reads them as they are
/// (`data.groups_file`, docs/experiment-format.md).
///
/// Written to OUT.h5, for each split (N samples):
///   /S/v               (N, 32, 32, 3) uint8   the PNG's pixels, rows top to bottom
///   /S/attr            (N, 11) float32        attribute vector, as gw::shapes::attributeVector makes it
///                                             (attributes num_classes = 3, class_names)
///   /S/labels          (N, 11) float32        the label file's first 11 columns, unchanged
///   /S/labels_unpaired (N,) float32           its 12th column (uniform in [0, 1)), when there is one
///   /S/t               (N,) 288-byte strings  the caption, UTF-8, NUL-padded
///   /S/caption_choices (N, 37) int8           its choices in GW Studio's columns (data/captions.h)
///   /S/t_bert          (N, D) float32         (latent − latent_mean) / latent_std, per column, as the
///                                             public text domain (SimpleShapesText) standardises them
///   /S/unpaired        (N, K) float32         S_unpaired.npy, when present
/// The output appears only when complete (written as OUT.h5.partial, then renamed: data/atomic_file.h).
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gw::data {

/// The import was stopped by its caller (Ctrl-C); nothing was left at the output path.
class ImportStopped : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct PublicFolderOptions {
    bool force = false;    ///< replace an existing output file
    bool text = true;      ///< read and write the captions, their choices and the BERT vectors
    int threads = 0;       ///< decoding threads; 0 = every core
    int compression = 1;   ///< gzip level of the datasets (0 = none)
};

/// What an import found, per split.
struct PublicFolderSplit {
    std::string name;               ///< "train", "val", "test"
    int64_t samples = 0;
    int64_t bertDim = 0;            ///< D of t_bert (0 without text)
    int64_t unpairedDim = 0;        ///< K of /S/unpaired (0 when the folder has none)
    bool labelsUnpaired = false;    ///< the label file had a 12th column
    /// Samples whose stored caption differs from the one GW Studio's composer makes of its labels and
    /// choices (composeCaption): the stored caption is kept, its choice columns are the public dict's.
    /// 0 for a folder made by the composer GW Studio restates (simple-shapes-dataset 3d0f6c5).
    int64_t captionMismatches = 0;
    int64_t firstMismatch = -1;     ///< the first such sample, -1 when none
};

/// Imports the `shapesd create` folder `dir` into `outFile` (through `outFile`.partial and a rename).
/// `progress(split, done, total)` is called as each split's PNGs are decoded (done of total images);
/// `stop()` is polled between blocks of images.
/// \throws DataError naming the file and the split, what was expected and what was found, for: a missing
///         file or folder, a PNG that is not an 8-bit RGB or RGBA 32 × 32 image or that libpng cannot
///         decode, a count of PNG files other than the label rows, label columns or values outside the
///         public generator's (class 0..2, colours whole numbers in 0..255), an NPY of another dtype or
///         shape than the table above (its reader's errors: data/npy.h), a pickled object array that
///         is not caption-choice dicts, a caption longer than 288 bytes, a standard deviation that is not
///         positive; an existing output without `force`. gw::WriteError when the output cannot be
///         written; ImportStopped when stop() returned true. On every error no output file is left.
std::vector<PublicFolderSplit> importSimpleShapesFolder(
    const std::string& dir, const std::string& outFile, const PublicFolderOptions& options,
    const std::function<void(const std::string& split, int64_t done, int64_t total)>& progress = {},
    const std::function<bool()>& stop = {});

/// Decodes one PNG of the dataset (the `bytes` of file `path`) into 32 · 32 · 3 bytes at `rgb`, rows top
/// to bottom. Accepts 8-bit RGB and RGBA (alpha dropped), interlaced or not.
/// \throws DataError "PATH (WHERE): expected a 32 x 32 PNG, found 64 x 64", "... expected an 8-bit RGB or
///         RGBA PNG, found 16-bit RGBA", or libpng's own words for a damaged file; `where` is the split.
void decodeShapesPng(const std::string& path, const std::string& where, const unsigned char* bytes, size_t size,
                     uint8_t* rgb);

}  // namespace gw::data
