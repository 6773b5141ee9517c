// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file settings_dialog.h
/// Edit ▸ Settings: the user's settings file (device, threads, data folder, runs folder), the lowest
/// layer of every experiment (docs/experiment-format.md, "Layers"). Reads and writes through the bridge.
#include <QDialog>

#include "ui/bridge/bridge.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QSpinBox;

namespace gw::studio {

class SettingsDialog : public QDialog {
    Q_OBJECT
public:
    explicit SettingsDialog(QWidget* parent = nullptr);
    /// The values as the fields show them now.
    SettingsData values() const;
    /// Fills the fields (a test, or the file read again).
    void setValues(const SettingsData& s);
    /// What the last save or the file's read said was wrong ("" when nothing).
    QString lastError() const { return error_; }

public Q_SLOTS:
    /// Writes the file; closes the dialog on success, otherwise says why and stays open.
    void accept() override;

private:
    QLineEdit* folderField(QWidget* row, const QString& title);
    QComboBox* device_;
    QSpinBox* threads_;
    QLineEdit* dataDir_;
    QLineEdit* runsDir_;
    QLabel* file_;
    QLabel* message_;
    QString path_, error_;
};

}  // namespace gw::studio
