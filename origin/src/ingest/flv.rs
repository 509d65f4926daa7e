//! FLV audio and video tag bodies (as RTMP carries them) to packager tracks and frames.
