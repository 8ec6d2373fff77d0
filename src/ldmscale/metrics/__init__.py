"""Image-quality and prompt-alignment metrics shared by evaluation and the prepare stage's
calibration: FID states held by torchmetrics (`fid`), prompt scores (`scores`), the feature
extractors FID runs on (`features`, `clip`) and bootstrap intervals (`intervals`); and the
training health of a size (`training`), which analysis reports and a failed evaluation names."""
