use std::time::Duration;

use uuid::Uuid;

use crate::scheduler::Scheduler;

#[tokio::test]
async fn a_users_extra_runs_wait_without_blocking_others() {
    let scheduler = Scheduler::new(2, 1);
    let (alice, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let first = scheduler.admit(alice).await;
    // Alice's second run waits for her own slot…
    let second = tokio::spawn({
        let s = scheduler.clone();
        async move { s.admit(alice).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!second.is_finished());
    // …while Bob's starts at once in the free global slot.
    let bob_slot = tokio::time::timeout(Duration::from_millis(100), scheduler.admit(bob))
        .await
        .expect("bob is not blocked behind alice");
    assert_eq!(scheduler.counts(), (2, 1));
    // A third user waits for a global slot; when Bob's run ends, Alice's older queued run
    // cannot take it (she is at her limit), so Carol's does.
    let carol = tokio::spawn({
        let s = scheduler.clone();
        async move { s.admit(Uuid::from_u128(3)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(bob_slot);
    let carol_slot = tokio::time::timeout(Duration::from_millis(100), carol)
        .await
        .unwrap()
        .unwrap();
    assert!(!second.is_finished());
    drop(first);
    let second_slot = tokio::time::timeout(Duration::from_millis(100), second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scheduler.counts(), (2, 0));
    drop((carol_slot, second_slot));
    assert_eq!(scheduler.counts(), (0, 0));
}
