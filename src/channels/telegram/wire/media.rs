//! File-carrying objects of a message: photo sizes, documents, videos, audio, voice notes, video
//! notes, stickers and animations. Older captures say `thumb` where current ones say `thumbnail`;
//! both are read.

use serde::Deserialize;

use super::de::null_default;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PhotoSize {
    pub file_id: String,
    /// Missing before Bot API 4.5.
    #[serde(default, deserialize_with = "null_default")]
    pub file_unique_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub width: u32,
    #[serde(default, deserialize_with = "null_default")]
    pub height: u32,
    pub file_size: Option<u64>,
}

impl PhotoSize {
    /// Ordering key for "largest": pixel count, then byte size.
    pub fn area_key(&self) -> (u64, u64) {
        (
            u64::from(self.width) * u64::from(self.height),
            self.file_size.unwrap_or(0),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Document {
    pub file_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub file_unique_id: String,
    pub thumbnail: Option<PhotoSize>,
    pub thumb: Option<PhotoSize>,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Video {
    pub file_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub file_unique_id: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<u32>,
    pub thumbnail: Option<PhotoSize>,
    pub thumb: Option<PhotoSize>,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Animation {
    pub file_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub file_unique_id: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<u32>,
    pub thumbnail: Option<PhotoSize>,
    pub thumb: Option<PhotoSize>,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Audio {
    pub file_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub file_unique_id: String,
    pub duration: Option<u32>,
    pub performer: Option<String>,
    pub title: Option<String>,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<u64>,
    pub thumbnail: Option<PhotoSize>,
    pub thumb: Option<PhotoSize>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Voice {
    pub file_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub file_unique_id: String,
    pub duration: Option<u32>,
    pub mime_type: Option<String>,
    pub file_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VideoNote {
    pub file_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub file_unique_id: String,
    /// Diameter in pixels (video notes are square).
    pub length: Option<u32>,
    pub duration: Option<u32>,
    pub thumbnail: Option<PhotoSize>,
    pub thumb: Option<PhotoSize>,
    pub file_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sticker {
    pub file_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub file_unique_id: String,
    /// `regular`, `mask` or `custom_emoji`; missing before Bot API 6.2.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    #[serde(default, deserialize_with = "null_default")]
    pub is_animated: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub is_video: bool,
    pub thumbnail: Option<PhotoSize>,
    pub thumb: Option<PhotoSize>,
    pub emoji: Option<String>,
    pub set_name: Option<String>,
    pub file_size: Option<u64>,
}
