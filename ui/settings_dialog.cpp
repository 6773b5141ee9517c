// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/settings_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

namespace gw::studio {

SettingsDialog::SettingsDialog(QWidget* parent) : QDialog(parent) {
    setWindowTitle("Settings");
    auto* layout = new QVBoxLayout(this);
    auto* intro = new QLabel("These complete every experiment you open or run, here and with the gw command: "
                             "a key the experiment sets itself wins.");
    intro->setWordWrap(true);
    layout->addWidget(intro);
    auto* form = new QFormLayout;
    layout->addLayout(form);

    device_ = new QComboBox;
    device_->addItem("Not set (cpu)", QString());
    for (const auto& d : listDevices())
        if (d.available) device_->addItem(d.label, d.id);
    device_->setToolTip("device: where experiments that name none train");
    form->addRow("&Device:", device_);

    threads_ = new QSpinBox;
    threads_->setRange(-1, 1024);
    threads_->setSpecialValueText("Not set (every core)");
    threads_->setToolTip("threads: LibTorch's intra-op threads; 0 = every core (auto)");
    form->addRow("&Threads:", threads_);

    auto* dataRow = new QWidget;
    dataDir_ = folderField(dataRow, "Data folder");
    dataDir_->setPlaceholderText("Not set (beside each experiment)");
    dataDir_->setToolTip("data.dir: the folder that relative data files (data.file, a domain's file) are in");
    form->addRow("D&ata folder:", dataRow);

    auto* runsRow = new QWidget;
    runsDir_ = folderField(runsRow, "Runs folder");
    runsDir_->setPlaceholderText("Not set (the experiment's training.out)");
    runsDir_->setToolTip("training.out: the folder that run folders and sweep folders go to");
    form->addRow("&Runs folder:", runsRow);

    file_ = new QLabel;
    file_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    file_->setStyleSheet("color: palette(mid);");
    layout->addWidget(file_);
    message_ = new QLabel;
    message_->setWordWrap(true);
    message_->setStyleSheet("color: #b00020;");
    message_->hide();
    layout->addWidget(message_);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Save | QDialogButtonBox::Cancel);
    connect(buttons, &QDialogButtonBox::accepted, this, &SettingsDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    layout->addWidget(buttons);

    QString err;
    setValues(loadSettings(&err));
    if (!err.isEmpty()) {
        error_ = err;
        message_->setText(err + "\nSaving writes a new file with the values shown.");
        message_->show();
    }
    resize(560, sizeHint().height());
}

QLineEdit* SettingsDialog::folderField(QWidget* row, const QString& title) {
    auto* h = new QHBoxLayout(row);
    h->setContentsMargins(0, 0, 0, 0);
    auto* edit = new QLineEdit;
    auto* browse = new QToolButton;
    browse->setText("…");
    browse->setToolTip("Choose the " + title.toLower());
    h->addWidget(edit, 1);
    h->addWidget(browse);
    connect(browse, &QToolButton::clicked, this, [this, edit, title] {
        const QString d = QFileDialog::getExistingDirectory(this, title, edit->text());
        if (!d.isEmpty()) edit->setText(d);
    });
    return edit;
}

SettingsData SettingsDialog::values() const {
    SettingsData s;
    s.path = path_;
    s.device = device_->currentData().toString();
    s.threads = threads_->value();
    s.dataDir = dataDir_->text().trimmed();
    s.runsDir = runsDir_->text().trimmed();
    return s;
}

void SettingsDialog::setValues(const SettingsData& s) {
    path_ = s.path;
    file_->setText("Saved in " + s.path);
    int at = device_->findData(s.device);
    if (at < 0) {  // a device this machine does not show (a GPU machine's file on a laptop): kept
        device_->addItem(s.device + " (not on this machine)", s.device);
        at = device_->count() - 1;
    }
    device_->setCurrentIndex(at);
    threads_->setValue(s.threads);
    dataDir_->setText(s.dataDir);
    runsDir_->setText(s.runsDir);
}

void SettingsDialog::accept() {
    error_ = saveSettings(values());
    if (!error_.isEmpty()) {
        message_->setText(error_);
        message_->show();
        return;
    }
    QDialog::accept();
}

}  // namespace gw::studio
