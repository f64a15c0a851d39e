"""Video quality sampling: what a camera's picture is wrong with.

* quality      the metrics of decoded frames and the verdict on them (pure numpy: no PyAV)
* decode       frames of a container, decoded and scaled with PyAV (the I/O edge)
* calibration  the clips every threshold is measured on, made with FFmpeg (tests, docs)
* reference    FFmpeg's own blackdetect, freezedetect and blurdetect, for cross-checks
* report       docs/video.md's decision table
"""
